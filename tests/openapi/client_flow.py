"""The job flow through a client generated from docs/openapi.json (openapi-python-client).

Run by `scripts/check-openapi --client` against a real panel, Redis and runner; reads
PANEL_URL, PANEL_TOKEN (admin), AGENT_ID (a runner that is online) and APP_ID (a test
bundle that prints and succeeds) from the environment. The client refuses any status the
document does not declare (raise_on_unexpected_status), so the flow also checks that the
document tells the truth about what it touches. Exits non-zero on the first mismatch.
"""

import os
import sys
import time
import uuid

from outfitter_client import AuthenticatedClient
from outfitter_client.api.apps import get_app_schema
from outfitter_client.api.auth import get_me
from outfitter_client.api.jobs import cancel_job, create_job, get_job, job_log, list_jobs, retry_job
from outfitter_client.models import ErrorBody, ErrorCode, JobStateName, JobView, NewJob, NewJobInputs
from outfitter_client.models.list_jobs_state import ListJobsState

# The test bundle that waits until it is canceled.
WAITING_APP = "e2e-wait"
LIMIT_SECONDS = 60


def expect(what, condition):
    if not condition:
        sys.exit(f"client flow: {what}")
    print(f"ok: {what}")


def wait_for(client, job_id, states):
    deadline = time.monotonic() + LIMIT_SECONDS
    while True:
        job = get_job.sync(job_id, client=client)
        expect_type(job, JobView, f"GET job {job_id}")
        if job.state in states:
            return job
        if time.monotonic() > deadline:
            sys.exit(f"client flow: job {job_id} still {job.state.value} after {LIMIT_SECONDS} s")
        time.sleep(0.2)


def expect_type(value, kind, what):
    if not isinstance(value, kind):
        sys.exit(f"client flow: {what} returned {value!r}, not a {kind.__name__}")


def main():
    env = os.environ
    agent, app = env["AGENT_ID"], env["APP_ID"]
    client = AuthenticatedClient(
        base_url=env["PANEL_URL"], token=env["PANEL_TOKEN"], raise_on_unexpected_status=True
    )

    me = get_me.sync(client=client)
    expect("the token is an admin", me.role.value == "admin")
    schema = get_app_schema.sync(app, client=client)
    expect(f"{app} asks for a greeting", "greeting" in schema.to_dict().get("properties", {}))

    # Create, with an idempotency key: the same request again is the same job.
    body = NewJob(app_id=app, agent_id=agent, inputs=NewJobInputs.from_dict({"greeting": "Hello"}))
    key = f"client-flow-{uuid.uuid4()}"
    created = create_job.sync_detailed(client=client, body=body, idempotency_key=key)
    expect("create answers 202", created.status_code == 202)
    job = created.parsed
    expect_type(job, JobView, "create")
    replay = create_job.sync_detailed(client=client, body=body, idempotency_key=key)
    expect("the same key returns the same job", replay.parsed.id == job.id)
    expect("and says it is a replay", replay.headers.get("idempotent-replayed") == "true")

    done = wait_for(client, job.id, {JobStateName.SUCCEEDED, JobStateName.FAILED})
    expect(f"{app} succeeded", done.state == JobStateName.SUCCEEDED and done.exit_code == 0)
    log = job_log.sync(job.id, client=client)
    expect("the log has the greeting", "greeting=Hello" in log)

    page = list_jobs.sync(client=client, state=ListJobsState.SUCCEEDED, app_id=app, limit=10)
    expect("list finds it among the succeeded", job.id in [j.id for j in page.jobs])

    refused = retry_job.sync_detailed(job.id, client=client)
    expect(
        "retrying a succeeded job is 409 not_retryable",
        refused.status_code == 409 and refused.parsed.code == ErrorCode.NOT_RETRYABLE,
    )

    # Cancel one that runs until it is canceled, then retry that.
    body = NewJob(app_id=WAITING_APP, agent_id=agent, inputs=NewJobInputs.from_dict({}))
    waiting = create_job.sync(client=client, body=body)
    expect_type(waiting, JobView, f"create {WAITING_APP}")
    wait_for(client, waiting.id, {JobStateName.RUNNING})
    result = cancel_job.sync(waiting.id, client=client)
    expect("cancel of a running job is requested", result.outcome == "requested")
    canceled = wait_for(client, waiting.id, {JobStateName.CANCELED})
    expect("it ends canceled", canceled.terminal)
    again = cancel_job.sync_detailed(waiting.id, client=client)
    expect(
        "canceling it again is 409 not_cancelable",
        again.status_code == 409
        and isinstance(again.parsed, ErrorBody)
        and again.parsed.code == ErrorCode.NOT_CANCELABLE,
    )
    # Retry the canceled job: the next attempt of the same job, which runs again.
    retried = retry_job.sync(waiting.id, client=client)
    expect_type(retried, JobView, "retry of the canceled job")
    expect("the retry is the same job", retried.id == waiting.id)
    running = wait_for(client, waiting.id, {JobStateName.RUNNING})
    expect("the retry runs as attempt 2", running.attempts == 2)
    cancel_job.sync(waiting.id, client=client)
    wait_for(client, waiting.id, {JobStateName.CANCELED})

    missing = get_job.sync_detailed(str(uuid.uuid4()), client=client)
    expect(
        "an unknown job is 404 job_not_found",
        missing.status_code == 404 and missing.parsed.code == ErrorCode.JOB_NOT_FOUND,
    )
    print("client flow: passed")


if __name__ == "__main__":
    main()
