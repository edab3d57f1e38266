"""The feedback loop: corrections and the moderation review queue (issue 8)."""

from feedlens.services.feedback.corrections import CorrectionError, CorrectionService
from feedlens.services.feedback.review import ReviewError, ReviewService, assess

__all__ = ["CorrectionError", "CorrectionService", "ReviewError", "ReviewService", "assess"]
