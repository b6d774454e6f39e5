"""The lobby kiosk: check-in, tickets, hospital guide, feedback and survey."""
