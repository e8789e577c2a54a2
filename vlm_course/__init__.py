"""Vision-Language Models for Vision Tasks - the course support package."""
