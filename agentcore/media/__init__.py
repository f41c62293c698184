"""Photos, voice notes and documents people send: read, described, transcribed, and filed."""
