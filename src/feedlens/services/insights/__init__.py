"""Audience insights (issue 26, docs/insights.md): post sentiment, brand monitoring and alerts,
influencers and authors, places, and recommendations for followers."""

from feedlens.services.insights.service import InsightsService

__all__ = ["InsightsService"]
