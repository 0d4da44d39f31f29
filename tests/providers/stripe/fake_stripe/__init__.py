"""A local fake of Stripe's API for billplane-stripe's tests: stateful, and strict about requests.

Every request is checked against Stripe's OpenAPI spec (``spec/spec3.json.gz``) or, for Billing
Meters, against the request types the installed ``stripe`` package declares; a violation is
recorded and answered with 400, and the test fixture fails the test at teardown.
"""
