from gateway.jobs import logs

TEXT = "plain\n[PUBLIC] INFO: for users\n[private] INFO: for providers\n[Public]tight\nlast\n"


def test_user_job_shows_every_line_without_prefixes() -> None:
    assert logs.user_logs(TEXT, provider_job=False) == ("plain\nINFO: for users\nINFO: for providers\ntight\nlast\n")


def test_provider_job_shows_users_only_public_lines() -> None:
    assert logs.user_logs(TEXT, provider_job=True) == "INFO: for users\ntight\n"


def test_provider_logs_hide_public_lines() -> None:
    assert logs.provider_logs(TEXT) == "plain\nINFO: for providers\nlast\n"


def test_empty_and_unterminated_text() -> None:
    assert logs.user_logs("", provider_job=False) == ""
    assert logs.user_logs("no newline", provider_job=False) == "no newline\n"
