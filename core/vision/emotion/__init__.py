"""Emotion: the FER2013 CNN, its training data reader and its evaluation."""

from core.vision.emotion.classifier import EmotionClassifier, EmotionReading
from core.vision.emotion.labels import EMOTIONS

__all__ = ["EMOTIONS", "EmotionClassifier", "EmotionReading"]
