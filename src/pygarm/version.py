"""pygarm's version, and the GARM version it speaks on the wire."""

__version__ = "0.1.0"
GARM_COMPATIBLE_VERSION = "v0.1.5"
CONTROLLER_VERSION = f"{GARM_COMPATIBLE_VERSION}+pygarm.{__version__}"
"""What ``controller_info.version`` reports: GARM's version, with pygarm's as semver build metadata."""
