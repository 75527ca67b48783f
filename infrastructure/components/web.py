"""The web dashboard (web/, built into web/dist) on S3 behind CloudFront, at `/app/`.

- The bucket is private: CloudFront reads it through an origin access control, nothing else.
- A CloudFront function routes as the local stack does (local/dashboard.py): `/` and `/app`
  go to `/app/`, files (`/app/assets/...`, names with a dot) are served as they are, and every
  other `/app/...` path is a page of the single-page app, so it gets `index.html`.
- Hashed files under `assets/` are cached for a year; `index.html`, `config.json` and the other
  top-level files are revalidated on every load, so a deploy shows at once.
- `config.json` names this stage's API and WebSocket; the API allows the distribution's
  origin through CORS (components/protection.py), and the pages' CSP allows only those.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

PREFIX = "app/"
ASSETS_CACHE = "public, max-age=31536000, immutable"
PAGES_CACHE = "no-cache"

# cloudfront-js-2.0; the same rules as local/dashboard.py.
ROUTER = """\
function handler(event) {
  var request = event.request;
  var uri = request.uri;
  if (uri === "/" || uri === "/app") {
    return {
      statusCode: 302,
      statusDescription: "Found",
      headers: { location: { value: "/app/" } },
    };
  }
  if (uri.indexOf("/app/") === 0 && uri.indexOf("/app/assets/") !== 0) {
    var last = uri.substring(uri.lastIndexOf("/") + 1);
    if (last.indexOf(".") === -1) {
      request.uri = "/app/index.html";
    }
  }
  return request;
}
"""


def content_security_policy(api_host: str) -> str:
    """The pages may talk to the stage's APIs only. Named by the region's API Gateway host
    pattern, not the APIs' own ids: the API allows the distribution's origin (CORS), so naming
    the API here would make the distribution and the API depend on each other."""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src 'self' https://{api_host} wss://{api_host}",
            "base-uri 'none'",
            "form-action 'self'",
            "object-src 'none'",
            "frame-ancestors 'none'",
        ]
    )


class WebDashboard(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        dist: Path,
        api_url: str,
        websocket_url: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        if not (dist / "index.html").is_file():
            raise FileNotFoundError(f"{dist}/index.html is missing: build the dashboard (make web)")

        # Built from the repository at every deploy: nothing in it is data.
        self.bucket = s3.Bucket(
            self,
            "Files",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            # Kept when the stack goes (emptying it on delete would take a provider function
            # with wildcard S3 rights); docs/operations.md says how to remove it.
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        router = cloudfront.Function(
            self,
            "Router",
            code=cloudfront.FunctionCode.from_inline(ROUTER),
            runtime=cloudfront.FunctionRuntime.JS_2_0,
            comment="Taskbeat dashboard: /app/ pages to index.html",
        )
        headers = cloudfront.ResponseHeadersPolicy(
            self,
            "Headers",
            comment="Taskbeat dashboard: security headers and CSP",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=content_security_policy(
                        f"*.execute-api.{stack.region}.{stack.url_suffix}"
                    ),
                    override=True,
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True
                ),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=cdk.Duration.days(365),
                    include_subdomains=True,
                    override=True,
                ),
            ),
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment=f"Taskbeat dashboard of {stack.stack_name}",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=headers,
                function_associations=[
                    cloudfront.FunctionAssociation(
                        function=router, event_type=cloudfront.FunctionEventType.VIEWER_REQUEST
                    )
                ],
            ),
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            minimum_protocol_version=cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
        )
        self.origin = f"https://{self.distribution.distribution_domain_name}"
        self.url = f"{self.origin}/app/"

        asset_sources = [s3deploy.Source.asset(str(dist / "assets"))]
        page_sources = [
            *(
                s3deploy.Source.data(path.name, path.read_text())
                for path in sorted(dist.iterdir())
                if path.is_file() and path.name != "config.json"
            ),
            s3deploy.Source.json_data("config.json", {"api_url": api_url, "ws_url": websocket_url}),
        ]
        self.deploy_role = self._deploy_role([*asset_sources, *page_sources])
        # BucketDeployment would grant its handler wildcard S3 and CloudFront rights; it gets
        # this exact role instead, closed to further statements.
        handler_role = self.deploy_role.without_policy_updates()
        assets = s3deploy.BucketDeployment(
            self,
            "Assets",
            sources=asset_sources,
            destination_bucket=self.bucket,
            destination_key_prefix=f"{PREFIX}assets/",
            cache_control=[s3deploy.CacheControl.from_string(ASSETS_CACHE)],
            # Old hashed files stay for pages loaded before the deploy.
            prune=False,
            role=handler_role,
        )
        pages = s3deploy.BucketDeployment(
            self,
            "Pages",
            sources=page_sources,
            destination_bucket=self.bucket,
            destination_key_prefix=PREFIX,
            cache_control=[s3deploy.CacheControl.from_string(PAGES_CACHE)],
            prune=False,
            distribution=self.distribution,
            distribution_paths=["/", "/app", "/app/*"],
            role=handler_role,
        )
        # The pages name the assets: these must be there first.
        pages.node.add_dependency(assets)

        output = cdk.CfnOutput(
            self, "DashboardUrl", value=self.url, description="URL of the web dashboard"
        )
        output.override_logical_id("DashboardUrl")

    def _deploy_role(self, sources: list[s3deploy.ISource]) -> iam.Role:
        """What the deployment's handler does: read its source zips (named: their keys are
        content hashes known now), write the dashboard's files, invalidate the distribution."""
        stack = cdk.Stack.of(self)
        # Binding here only names the source objects: the same assets, by content hash, as the
        # deployments' own binding (a role closed to updates receives no grant from it).
        keys = Construct(self, "SourceObjects")
        closed = iam.Role(
            keys, "Unused", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com")
        ).without_policy_updates()
        sources_read = [
            config.bucket.arn_for_objects(config.zip_object_key)
            for config in (source.bind(keys, handler_role=closed) for source in sources)
        ]
        role = iam.Role(
            self,
            "DeployRole",
            description="Copies the dashboard's files to its bucket at deploy time",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(
                    "service-role/AWSLambdaBasicExecutionRole"
                )
            ],
        )
        for sid, actions, resources in (
            ("ReadSources", ["s3:GetObject"], sources_read),
            ("ListFiles", ["s3:ListBucket"], [self.bucket.bucket_arn]),
            ("WriteFiles", ["s3:PutObject"], [self.bucket.arn_for_objects(f"{PREFIX}*")]),
            (
                "Invalidate",
                ["cloudfront:CreateInvalidation", "cloudfront:GetInvalidation"],
                [
                    stack.format_arn(
                        service="cloudfront",
                        region="",
                        resource="distribution",
                        resource_name=self.distribution.distribution_id,
                        arn_format=cdk.ArnFormat.SLASH_RESOURCE_NAME,
                    )
                ],
            ),
        ):
            role.add_to_principal_policy(
                iam.PolicyStatement(sid=sid, actions=actions, resources=resources)
            )
        return role
