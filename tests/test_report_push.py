"""`kubetune report --push`: Slack (loopback webhook server) and S3 (moto's server), never real services."""

from __future__ import annotations

import json

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.support.cli_helpers import assert_clean_error, run_cli
from tests.support.slack_server import SlackWebhookServer
from tests.support.tiny import tiny_snapshot

SECRET_KEY = "wJalrXUtnFEMI-test-secret-never-printed"


@pytest.fixture(scope="module")
def s3():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = {"AWS_ACCESS_KEY_ID": "AKIATESTKEY", "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": "us-east-1"}
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=SECRET_KEY, region_name="us-east-1")
    client.create_bucket(Bucket="finops")
    yield endpoint, env, client
    server.stop()


@pytest.fixture(scope="module")
def snap(tmp_path_factory):
    return tiny_snapshot().write(tmp_path_factory.mktemp("snap") / "snap")


def test_push_to_slack(snap, tmp_path):
    with SlackWebhookServer() as slack:
        result = run_cli("report", snap, "--out", tmp_path / "r", "--push", "slack",
                         env={"KUBETUNE_SLACK_WEBHOOK_URL": slack.url})
        assert result.code == 0, result.err
    assert len(slack.messages) == 1
    text = slack.messages[0]["text"]
    doc = json.loads((tmp_path / "r" / "report.json").read_text())
    assert doc["title"] in text and f"${doc['headline']['monthly_cost_usd']:,.0f}" in text
    assert "s3cr3tw3bh00k" not in result.err + result.out


def test_slack_webhook_from_a_mounted_secret_file(snap, tmp_path):
    with SlackWebhookServer() as slack:
        secret = tmp_path / "webhook"
        secret.write_text(slack.url + "\n")
        result = run_cli("report", snap, "--out", tmp_path / "r", "--push", "slack", "--slack-webhook-file", secret)
        assert result.code == 0, result.err
    assert len(slack.messages) == 1


def test_slack_refusing_keeps_the_local_report_and_the_secret(snap, tmp_path):
    with SlackWebhookServer(refuse="invalid_token") as slack:
        result = run_cli("report", snap, "--out", tmp_path / "r", "--push", "slack",
                         env={"KUBETUNE_SLACK_WEBHOOK_URL": slack.url})
    assert_clean_error(result, 1, "Slack refused the report (HTTP 403: invalid_token); the local report is kept")
    assert "s3cr3tw3bh00k" not in result.err + result.out
    assert (tmp_path / "r" / "report.html").is_file()
    # no webhook configured: refused before any work, nothing written
    missing = run_cli("report", snap, "--out", tmp_path / "r2", "--push", "slack", env={"KUBETUNE_SLACK_WEBHOOK_URL": ""})
    assert_clean_error(missing, 2, "KUBETUNE_SLACK_WEBHOOK_URL")
    assert not (tmp_path / "r2").exists()


def test_push_to_s3(snap, tmp_path, s3):
    endpoint, env, client = s3
    result = run_cli("report", snap, "--history-dir", tmp_path / "h", "--push", "s3://finops/weekly/prod",
                     "--s3-endpoint", endpoint, env=env)
    assert result.code == 0, result.err
    run = json.loads((tmp_path / "h" / "latest" / "report.json").read_text())["run_id"]
    keys = {o["Key"] for o in client.list_objects_v2(Bucket="finops", Prefix="weekly/prod/")["Contents"]}
    assert {f"weekly/prod/{run}/report.html", f"weekly/prod/{run}/report.json", f"weekly/prod/{run}/report.md",
            f"weekly/prod/{run}/patches/kustomization.yaml", "weekly/prod/latest/report.html"} <= keys
    head = client.head_object(Bucket="finops", Key=f"weekly/prod/{run}/report.html")
    assert head["ContentType"] == "text/html"
    body = client.get_object(Bucket="finops", Key="weekly/prod/latest/report.json")["Body"].read()
    assert json.loads(body)["run_id"] == run
    assert SECRET_KEY not in result.err + result.out


def test_s3_refusing_keeps_the_local_report(snap, tmp_path, s3):
    endpoint, env, _ = s3
    result = run_cli("report", snap, "--out", tmp_path / "r", "--push", "s3://no-such-bucket/x",
                     "--s3-endpoint", endpoint, env=env)
    assert_clean_error(result, 1, "refused the upload (NoSuchBucket); the local report is kept")
    assert (tmp_path / "r" / "report.json").is_file()
    assert SECRET_KEY not in result.err + result.out
    bad = run_cli("report", snap, "--out", tmp_path / "r3", "--push", "s3:/oops")
    assert_clean_error(bad, 2, "is not s3://BUCKET[/PREFIX]")
    assert not (tmp_path / "r3").exists()
