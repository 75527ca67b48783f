"""The AWS CDK app that deploys Taskbeat (`app.py`), and the Lambda packaging it relies on."""
