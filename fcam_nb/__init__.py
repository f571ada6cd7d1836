"""fcam-nb."""
