from django.db import models


class Effect(models.Model):
    """One row per handler run: duplicates would show as repeated keys."""

    key = models.CharField(max_length=64, db_index=True)
    worker = models.CharField(max_length=64)
    at = models.FloatField()

    def __str__(self) -> str:
        return f"{self.key} by {self.worker}"
