"""The simulated population: departments, employees, WeChat users, follow relations, tags, groups.

(Placeholder being replaced by the full generator.)
"""

from __future__ import annotations

from siyu.wecom_sim.models import Department, User


def is_seeded() -> bool:
    return Department.objects.exists()


def seed(customers: int = 5000, seed: int = 1, demo: bool = True, reset: bool = True) -> dict:
    Department.objects.get_or_create(id=1, defaults={"name": "总部", "parentid": 0})
    User.objects.get_or_create(userid="zhangsan", defaults={"name": "张三", "department": [1]})
    return {"departments": 1, "users": 1, "customers": 0}
