"""Training and calibration code, outside the runtime package."""
