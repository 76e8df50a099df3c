"""Sign MediaPackage API calls for API Gateway's IAM authorization.

A deployed Sluice control API sits behind API Gateway with IAM authorization, which
accepts SigV4 signatures scoped to the `execute-api` service. boto3 and aws-cli sign
MediaPackage calls for `mediapackage`. This module re-scopes the signature; nothing else
changes (same credentials, region and request).

boto3:
    import boto3, sluice_signing
    mp = sluice_signing.register(boto3.client("mediapackage", endpoint_url=CONTROL_API_URL))

aws-cli (a plugin):
    aws configure set plugins.sluice sluice_signing
    # v1 imports plugins from PYTHONPATH (tested); v2 reads plugins.cli_legacy_plugin_path (untested)
    PYTHONPATH=/path/to/sluice/infra/aws aws mediapackage list-channels --endpoint-url "$CONTROL_API_URL"
"""

SERVICE = "execute-api"


def _sign_for_api_gateway(request, **_):
    request.context.setdefault("signing", {})["signing_name"] = SERVICE


def register(client):
    """Makes a boto3 MediaPackage client sign for API Gateway; returns the client."""
    client.meta.events.register("before-sign.mediapackage", _sign_for_api_gateway)
    return client


def awscli_initialize(cli):
    """aws-cli plugin entry point."""
    cli.register("before-sign.mediapackage", _sign_for_api_gateway)
