"""Where memory lives: the storage Protocols (``protocols``) and their backends (``sqlite``)."""
