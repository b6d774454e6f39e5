"""Site side: roster publishing, event collector, reports and alerts."""
