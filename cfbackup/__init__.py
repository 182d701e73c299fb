"""cfbackup: duplicity backups to OpenStack Swift, and the incident-recovery steps around them."""

__version__ = "0.1.0"
