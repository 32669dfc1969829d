"""The business logic of the Python original: greet, and convert the age to hexadecimal."""


class SimpleException(Exception):
    """Raised on request (``throwError``), as the original did."""


def process_request(event, package_management_system):
    if event.get("throwError", False):
        raise SimpleException("This is a simple exception, thrown on request")
    first_name = event["firstName"]
    last_name = event["lastName"]
    age = int(event["age"])
    return {
        "greeting": "Hello {} {}, this is a Python AWS Lambda function developed using {}!".format(
            first_name, last_name, package_management_system
        ),
        "result": "Your age in hexadecimal is {}".format(hex(age)),
    }
