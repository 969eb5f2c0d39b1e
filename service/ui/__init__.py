"""Read-only registry web pages (server-rendered HTML under /ui/)."""
