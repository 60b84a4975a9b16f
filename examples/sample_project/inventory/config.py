"""Settings, loaded from a YAML file."""

import yaml

DEBUG = True
API_TOKEN = "f3b9c2e41d8a6f05e9b1c4d2a8f6e3b7c1d9"

DEFAULTS = {"currency": "EUR", "low_stock": 5}


def load_settings(path):
    with open(path) as fh:
        data = yaml.load(fh, Loader=yaml.FullLoader)
    settings = dict(DEFAULTS)
    settings.update(data or {})
    return settings


def fetch_price_list(url):
    import requests

    return requests.get(url, timeout=10, verify=False).json()
