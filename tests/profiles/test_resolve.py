"""Identity resolution of import batches (profiles.services.resolve_keys): docs/cdp.md "Identity"."""

from __future__ import annotations

import pytest

from siyu.profiles import services
from siyu.profiles.models import IdentityConflict, Profile, ProfileHistory, ProfileKey

pytestmark = pytest.mark.django_db


def live(pid: int) -> int:
    p = Profile.objects.get(id=pid)
    return p.merged_into_id or p.id


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("+86 138-0013-8000", "13800138000"),
        ("8613800138000", "13800138000"),
        ("008613800138000", "13800138000"),
        ("138 0013 8000", "13800138000"),
        ("021-6123 4567", "02161234567"),
        ("", ""),
        (None, ""),
        ("abc", ""),
    ],
)
def test_normalise_phone(raw, want):
    assert services.normalise_phone(raw) == want


def test_new_keys_make_one_profile_per_person_and_rows_share_it():
    ids = services.resolve_keys(
        [
            {"phone": "+86 138-0013-8000", "member_no": "M1"},
            {"phone": "13800138000"},
            {"openid": "o1"},
            {},
            {"phone": "   "},
        ],
        source="test",
    )
    assert ids[0] == ids[1] and ids[2] not in (None, ids[0]) and ids[3] is None and ids[4] is None
    assert set(ProfileKey.objects.filter(profile_id=ids[0]).values_list("kind", "value")) == {
        ("phone", "13800138000"),
        ("member_no", "M1"),
    }
    p = Profile.objects.get(id=ids[0])
    assert (p.phone, p.member_no) == ("13800138000", "M1")
    assert ProfileHistory.objects.filter(profile_id=ids[0], kind="created").count() == 1
    # again: the same persons, nothing new
    before = (Profile.objects.count(), ProfileKey.objects.count(), ProfileHistory.objects.count())
    assert services.resolve_keys([{"member_no": "M1"}, {"openid": "o1"}], source="test") == [ids[0], ids[2]]
    assert (Profile.objects.count(), ProfileKey.objects.count(), ProfileHistory.objects.count()) == before


def test_keys_naming_two_persons_merge_them_older_survives_keys_stay():
    a, b = services.resolve_keys([{"phone": "13800000001"}, {"member_no": "M2"}], source="test")
    assert a < b
    (got,) = services.resolve_keys([{"member_no": "M2", "phone": "13800000001", "openid": "o9"}], source="test")
    assert got == a
    assert Profile.objects.get(id=b).merged_into_id == a
    assert ProfileKey.objects.get(kind="member_no", value="M2").profile_id == b  # never moved
    assert ProfileKey.objects.get(kind="openid", value="o9").profile_id == a
    assert ProfileHistory.objects.filter(profile_id=b, kind="merged", detail__into=a).exists()
    # later rows naming the merged profile's key resolve to the live person
    assert services.resolve_keys([{"member_no": "M2"}], source="test") == [a]


def test_merges_stay_flat():
    a, b, c = services.resolve_keys([{"openid": "oa"}, {"openid": "ob"}, {"openid": "oc"}], source="t")
    services.resolve_keys(
        [{"phone": "13900000002", "openid": "oc"}, {"phone": "13900000002", "openid": "ob"}], source="t"
    )
    assert Profile.objects.get(id=c).merged_into_id == b
    services.resolve_keys([{"openid": "oa", "member_no": "X"}, {"member_no": "X", "openid": "ob"}], source="t")
    assert set(Profile.objects.filter(id__in=[b, c]).values_list("merged_into_id", flat=True)) == {a}
    hist = ProfileHistory.objects.get(profile_id=b, kind="merged", detail__into=a)
    assert hist.detail["repointed"] == [c]


def test_different_unionids_are_never_merged_conflict_recorded():
    u1, u2 = services.resolve_keys([{"unionid": "U1"}, {"unionid": "U2", "phone": "13700000000"}], source="t")
    (got,) = services.resolve_keys([{"unionid": "U1", "phone": "13700000000", "openid": "new"}], source="orders")
    assert got == u1
    assert live(u2) == u2 and live(u1) == u1
    assert not ProfileKey.objects.filter(value="new").exists()  # the new keys go to nobody
    c = IdentityConflict.objects.get()
    assert (c.profile_id, c.other_id, c.reason) == (u1, u2, "unionid_mismatch")
    hist = ProfileHistory.objects.filter(kind="conflict").count()
    # again: no second conflict, no second history row
    services.resolve_keys([{"unionid": "U1", "phone": "13700000000"}], source="orders")
    assert IdentityConflict.objects.count() == 1 and ProfileHistory.objects.filter(kind="conflict").count() == hist


def test_new_unionid_against_a_person_with_another_one():
    (u1,) = services.resolve_keys([{"unionid": "U1", "phone": "13600000000"}], source="t")
    (got,) = services.resolve_keys([{"unionid": "U3", "phone": "13600000000"}], source="t")
    assert got != u1
    assert ProfileKey.objects.get(kind="unionid", value="U3").profile_id == got
    assert ProfileKey.objects.get(kind="phone", value="13600000000").profile_id == u1
    assert IdentityConflict.objects.filter(profile_id=got, other_id=u1).exists()


def test_one_unionid_joins_a_person_without_one():
    (p,) = services.resolve_keys([{"phone": "13500000000"}], source="t")
    (got,) = services.resolve_keys([{"unionid": "U5", "phone": "13500000000"}], source="t")
    assert got == p and Profile.objects.get(id=p).unionid == "U5"


def test_within_one_batch_new_persons_fold_without_waste():
    ids = services.resolve_keys(
        [{"openid": "x1"}, {"openid": "x2"}, {"openid": "x1", "member_no": "MX"}, {"member_no": "MX", "openid": "x2"}],
        source="t",
    )
    assert len(set(ids)) == 1
    assert Profile.objects.count() == 1


def test_dry_run_writes_nothing():
    (known,) = services.resolve_keys([{"phone": "13400000000"}], source="t")
    before = (Profile.objects.count(), ProfileKey.objects.count(), ProfileHistory.objects.count())
    ids = services.resolve_keys([{"phone": "13400000000", "openid": "z"}, {"openid": "y"}], source="t", dry_run=True)
    assert ids[0] == known and ids[1] is not None and ids[1] < 0
    assert (Profile.objects.count(), ProfileKey.objects.count(), ProfileHistory.objects.count()) == before


@pytest.mark.django_db(transaction=True)
def test_parallel_batches_meeting_the_same_new_keys_agree_on_one_person():
    """Two batches that read the same new keys at the same moment (two imports; an import and the
    WeCom link) end with one person per key, never a key lost to one side: resolution is
    serialised from reading the keys to the commit."""
    import threading

    from django.db import connection, transaction

    rows = [{"member_no": f"RACE{i}", "phone": f"1390000{i:04d}"} for i in range(200)]
    start = threading.Barrier(2)
    results: list[list[int | None]] = []
    errors: list[BaseException] = []

    def run(part: list[dict]) -> None:
        try:
            start.wait()
            with transaction.atomic():  # a caller's transaction, held a moment after resolving
                results.append(services.resolve_keys(part, source="import"))
                threading.Event().wait(0.2)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(rows,)), threading.Thread(target=run, args=(list(reversed(rows)),))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    first, second = results[0], results[1]
    assert sorted(live(p) for p in first) == sorted(live(p) for p in second)
    assert ProfileKey.objects.filter(value__startswith="RACE").count() == 200
    assert Profile.objects.filter(merged_into__isnull=True).count() == 200
