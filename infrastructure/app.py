"""CDK entry point: `python app.py` here (what `cdk synth` runs, per cdk.json).

Context (`cdk -c key=value`, or the CDK_CONTEXT_JSON environment variable):
- `stage` (default `dev`): stacks `taskbeat-<stage>-data` (stateful: tables, secrets) and
  `taskbeat-<stage>` (stateless: everything else), tables `taskbeat-<stage>-<name>`.
- Per stage as `stages.<stage>` objects (e.g. in cdk.json), or flat keys that override them
  (infrastructure/settings.py):
  `destroy_data` (default false): tables, secrets and logs are deleted with their stacks instead
  of retained (tables lose deletion protection, the data stack termination protection). For
  throw-away dev stages only. `alarm_email`: subscribed to the alarm topic.
- Protection (infrastructure/components/protection.py, docs/protection.md), per stage as
  `protection.<stage>` objects (e.g. in cdk.json), or flat keys that override them:
  `waf_rate_limit` (2000 requests per client address per 5 minutes),
  `waf_auth_rate_limit` (300, the same on `/auth/*`), `throttle_rate` / `throttle_burst`
  (100 / 200, the stage), `auth_throttle_rate` / `auth_throttle_burst` (10 / 20, per auth
  route), `cors_origins` (comma-separated or a list; default none: no CORS headers).

Writes the cloud assembly to $CDK_OUTDIR, or `cdk.out/` beside this file.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

INFRASTRUCTURE_DIR = Path(__file__).resolve().parent


def main() -> None:
    import aws_cdk as cdk

    from infrastructure import nag, packaging
    from infrastructure.settings import StageSettings
    from infrastructure.stack import DataStack, ServiceStack

    # Chalice needs a region only to name API Gateway's service principal; the template itself
    # is region-agnostic (it uses AWS::Region).
    if not (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")):
        os.environ["AWS_DEFAULT_REGION"] = os.environ.get("CDK_DEFAULT_REGION", "us-east-1")

    app = cdk.App(outdir=os.environ.get("CDK_OUTDIR") or str(INFRASTRUCTURE_DIR / "cdk.out"))
    settings = StageSettings.from_context(app.node)
    with packaging.lambda_project() as project:
        data = DataStack(app, settings)
        service = ServiceStack(
            app,
            settings,
            data=data,
            project=project,
            web_dist=INFRASTRUCTURE_DIR.parent / "web" / "dist",
        )
        for stack in (data, service):
            nag.apply(stack)  # findings are error annotations: `cdk synth` fails on them
        cdk.Tags.of(app).add("app", "taskbeat")
        cdk.Tags.of(app).add("stage", settings.stage)
        app.synth()


if __name__ == "__main__":
    # Run as a script, this directory is sys.path[0], where `infrastructure/*.py` could shadow
    # other modules; import everything from the repo root instead (chalicelib lives there too).
    sys.path[0] = str(INFRASTRUCTURE_DIR.parent)
    main()
