from gateway.jobs.service import page_links


def test_links_carry_only_limit_and_offset() -> None:
    assert page_links("http://h/api/v1/jobs", count=5, limit=2, offset=0) == (
        "http://h/api/v1/jobs?limit=2&offset=2",
        None,
    )
    assert page_links("u", count=5, limit=2, offset=2) == ("u?limit=2&offset=4", "u?limit=2&offset=0")
    assert page_links("u", count=5, limit=2, offset=4) == (None, "u?limit=2&offset=2")
    assert page_links("u", count=5, limit=0, offset=0) == (None, None)
    assert page_links("u", count=5, limit=2, offset=1) == ("u?limit=2&offset=3", "u?limit=2&offset=0")
