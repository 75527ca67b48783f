"""The web dashboard on S3 behind CloudFront (infrastructure/components/web.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from infrastructure.components.web import ASSETS_CACHE, PAGES_CACHE, ROUTER
from tests.infra.conftest import CloudAssembly

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]


def _one(cloud_assembly: CloudAssembly, resource_type: str, prefix: str) -> tuple[str, Any]:
    (match,) = (
        (logical_id, resource)
        for logical_id, resource in cloud_assembly.resources(resource_type).items()
        if logical_id.startswith(prefix)
    )
    return match


def test_the_bucket_is_private_and_read_by_the_distribution_only(
    cloud_assembly: CloudAssembly,
) -> None:
    _, bucket = _one(cloud_assembly, "AWS::S3::Bucket", "WebFiles")
    assert bucket["Properties"]["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["DeletionPolicy"] == "Retain"
    _, policy = _one(cloud_assembly, "AWS::S3::BucketPolicy", "WebFiles")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    allowed = [s for s in statements if s["Effect"] == "Allow"]
    denied = [s for s in statements if s["Effect"] == "Deny"]
    assert [s["Condition"] for s in denied] == [{"Bool": {"aws:SecureTransport": "false"}}]
    (read,) = allowed
    assert read["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert read["Action"] == "s3:GetObject"
    source = json.dumps(read["Condition"]["StringEquals"]["AWS:SourceArn"])
    assert "WebDistribution" in source


def test_the_distribution_serves_https_with_the_router_and_security_headers(
    cloud_assembly: CloudAssembly,
) -> None:
    _, distribution = _one(cloud_assembly, "AWS::CloudFront::Distribution", "WebDistribution")
    config = distribution["Properties"]["DistributionConfig"]
    behavior = config["DefaultCacheBehavior"]
    assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behavior["AllowedMethods"] == ["GET", "HEAD"]
    (association,) = behavior["FunctionAssociations"]
    assert association["EventType"] == "viewer-request"
    _, function = _one(cloud_assembly, "AWS::CloudFront::Function", "WebRouter")
    assert function["Properties"]["FunctionCode"] == ROUTER
    _, headers = _one(cloud_assembly, "AWS::CloudFront::ResponseHeadersPolicy", "WebHeaders")
    security = headers["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    assert security["FrameOptions"]["FrameOption"] == "DENY"
    assert security["StrictTransportSecurity"]["AccessControlMaxAgeSec"] == 365 * 86400
    csp = json.dumps(security["ContentSecurityPolicy"]["ContentSecurityPolicy"])
    assert "script-src 'self'" in csp
    assert "connect-src 'self' https://*.execute-api." in csp
    assert "frame-ancestors 'none'" in csp


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("/", "302 /app/"),
        ("/app", "302 /app/"),
        ("/app/", "/app/index.html"),
        ("/app/projects/01J/tasks", "/app/index.html"),
        ("/app/assets/index-3f2a.js", "/app/assets/index-3f2a.js"),
        ("/app/assets/missing", "/app/assets/missing"),
        ("/app/favicon.svg", "/app/favicon.svg"),
        ("/app/config.json", "/app/config.json"),
        ("/elsewhere", "/elsewhere"),
    ],
)
def test_the_router_sends_pages_to_index_and_files_as_they_are(uri: str, expected: str) -> None:
    """The CloudFront function itself, run by Node (the CDK needs it anyway)."""
    node = shutil.which("node")
    assert node, "node is needed (it runs the CDK)"
    script = ROUTER + (
        f"var out = handler({{request: {{uri: {json.dumps(uri)}}}}});\n"
        "console.log(out.statusCode ? out.statusCode + ' ' + out.headers.location.value "
        ": out.uri);\n"
    )
    result = subprocess.run(
        [node, "-e", script], capture_output=True, text=True, timeout=30, check=True
    )
    assert result.stdout.strip() == expected


def test_files_are_deployed_with_their_caching_and_config(cloud_assembly: CloudAssembly) -> None:
    deployments = {
        logical_id: resource["Properties"]
        for logical_id, resource in cloud_assembly.resources("Custom::CDKBucketDeployment").items()
    }
    assets = next(p for i, p in deployments.items() if i.startswith("WebAssets"))
    pages = next(p for i, p in deployments.items() if i.startswith("WebPages"))
    assert assets["DestinationBucketKeyPrefix"] == "app/assets/"
    assert assets["SystemMetadata"] == {"cache-control": ASSETS_CACHE}
    assert pages["DestinationBucketKeyPrefix"] == "app/"
    assert pages["SystemMetadata"] == {"cache-control": PAGES_CACHE}
    assert pages["DistributionPaths"] == ["/", "/app", "/app/*"]
    # config.json names this stage's APIs (markers filled in at deploy time).
    markers = json.dumps(pages["SourceMarkers"])
    assert "RestAPI" in markers
    assert "WebsocketAPI" in markers


def test_the_deployment_role_names_what_it_touches(cloud_assembly: CloudAssembly) -> None:
    role_id, _ = _one(cloud_assembly, "AWS::IAM::Role", "WebDeployRole")
    (policy,) = (
        p["Properties"]
        for p in cloud_assembly.resources("AWS::IAM::Policy").values()
        if p["Properties"]["Roles"] == [{"Ref": role_id}]
    )
    statements = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    assert set(statements) == {"ReadSources", "ListFiles", "WriteFiles", "Invalidate"}
    keys = {
        key
        for p in cloud_assembly.resources("Custom::CDKBucketDeployment").values()
        for key in p["Properties"]["SourceObjectKeys"]
    }
    read = json.dumps(statements["ReadSources"]["Resource"])
    assert all(key in read for key in keys)
    assert statements["ReadSources"]["Action"] == "s3:GetObject"
    assert "/app/*" in json.dumps(statements["WriteFiles"]["Resource"])
    assert "distribution/" in json.dumps(statements["Invalidate"]["Resource"])
    handlers = [
        f
        for f in cloud_assembly.resources("AWS::Lambda::Function").values()
        if "CDKBucketDeployment" in json.dumps(f["Properties"].get("Role"))
        or json.dumps(f["Properties"].get("Role")).count(role_id)
    ]
    assert handlers, "the deployment's handler does not use the role"


def test_the_api_allows_the_dashboard_origin(cloud_assembly: CloudAssembly) -> None:
    variables = cloud_assembly.template["Resources"]["APIHandler"]["Properties"]["Environment"][
        "Variables"
    ]
    origins = json.dumps(variables["TASKBEAT_CORS_ORIGINS"])
    assert "https://" in origins
    assert "WebDistribution" in origins
    assert cloud_assembly.template["Outputs"]["DashboardUrl"]
