"""What the gateway hands to the executor for one job, stored next to the job in storage.

Kept out of Prefect parameters on purpose: it carries the job's callback token,
which must never show in the Prefect UI or its API.
"""

from __future__ import annotations

from pydantic import BaseModel

from core import layout
from core.storage import Storage

TOKEN_VARIABLE = "ENV_JOB_GATEWAY_TOKEN"


class JobSpec(BaseModel):
    job_id: str
    program_title: str
    entrypoint: str
    data_area: str
    provider_area: str | None = None  # a provider program's shared area (FUNCTION_DATA_PATH)
    env: dict[str, str]
    program_env: dict[str, str] = {}
    dependencies: list[str] = []  # the program's normalized allow-listed requirements, installed per node
    resources: dict[str, float] = {}  # custom Ray resources the job's task needs (its run's config)

    @property
    def artifact_key(self) -> str:
        return layout.job_artifact(self.job_id)

    @property
    def logs_key(self) -> str:
        return layout.job_logs(self.job_id)

    @property
    def arguments_key(self) -> str:
        return layout.arguments_file(self.data_area, self.job_id)

    @property
    def results_key(self) -> str:
        return layout.results_file(self.data_area, self.job_id)

    def save(self, storage: Storage) -> None:
        storage.put_bytes(layout.job_spec(self.job_id), self.model_dump_json().encode())

    def forget_secrets(self, storage: Storage) -> None:
        """Rewrite the stored spec without the callback token once no attempt will read it again.

        A confined program never sees the platform's storage, but an unconfined one
        (QS_SANDBOX=false) runs as the platform's OS user: the token must not stay in
        a file another job could read.
        """
        public = self.model_copy(update={"env": {k: v for k, v in self.env.items() if k != TOKEN_VARIABLE}})
        public.save(storage)

    @classmethod
    def load(cls, storage: Storage, job_id: str) -> JobSpec:
        raw = storage.get_bytes(layout.job_spec(job_id))
        if raw is None:
            raise FileNotFoundError(f"no job spec for job {job_id}")
        return cls.model_validate_json(raw)
