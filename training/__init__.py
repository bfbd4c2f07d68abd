"""Training and calibration code, outside the runtime package: FER2013 loading and the emotion CNN's
training loop, its evaluation, and the face-match threshold calibration."""
