"""The site console (SPEC 9.7): a live web page over the site database, with log-in."""
