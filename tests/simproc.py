"""The emulator process starter, now ``siyu.wecom_sim.process`` (benchmarks use it without pytest)."""

from siyu.wecom_sim.process import (
    SIM_APP_SECRET,
    SIM_CORP_ID,
    SIM_SECRET,
    SimProcess,
    free_port,
)

__all__ = ["SIM_APP_SECRET", "SIM_CORP_ID", "SIM_SECRET", "SimProcess", "free_port"]
