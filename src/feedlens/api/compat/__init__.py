"""Wire-compatible endpoints of cloud vision APIs (Google Cloud Vision, AWS Rekognition), so existing
clients switch to feedlens by changing their endpoint (docs/compat.md)."""
