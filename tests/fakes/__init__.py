"""Small fakes of the wire protocols the bot talks, served on 127.0.0.1."""
