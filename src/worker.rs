//! The pure business logic, separated from the Lambda adapter so it can be unit tested:
//! no I/O, no clock, no environment.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::HandlerError;

/// The function's response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Greeting {
    /// `Hello <first> <last>, this is a Rust AWS Lambda function developed using <pms>!`
    pub greeting: String,
    /// `Your age in hexadecimal is 0x..`
    pub result: String,
}

/// Greets the person in `event` and converts their age to hexadecimal.
///
/// The event is `{"firstName", "lastName", "age", "throwError"}`; the snake_case spellings
/// `first_name`, `last_name` and `throw_error` are accepted too (camelCase wins when both are
/// present). `throwError` is optional, defaults to `false`, and — as in the original — is honoured
/// before anything else is checked.
pub fn process_request(
    event: &Value,
    package_management_system: &str,
) -> Result<Greeting, HandlerError> {
    let Some(object) = event.as_object() else {
        return Err(HandlerError::invalid_event(
            "event",
            format!("the event must be a JSON object, not {}", json_type(event)),
        ));
    };
    let throw_error = match field(object, "throwError", "throw_error") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => *flag,
        Some(other) => {
            return Err(HandlerError::invalid_event(
                "throwError",
                format!("must be a boolean, not {}", json_type(other)),
            ));
        }
    };
    if throw_error {
        return Err(HandlerError::simple_exception());
    }
    let first_name = name(object, "firstName", "first_name")?;
    let last_name = name(object, "lastName", "last_name")?;
    let age = age(object)?;
    Ok(Greeting {
        greeting: format!(
            "Hello {first_name} {last_name}, this is a Rust AWS Lambda function developed using {package_management_system}!"
        ),
        result: format!("Your age in hexadecimal is {age:#x}"),
    })
}

/// The camelCase spelling, else the snake_case one; `null` counts as absent.
fn field<'a>(object: &'a Map<String, Value>, camel: &str, snake: &str) -> Option<&'a Value> {
    let present = |name: &str| object.get(name).filter(|value| !value.is_null());
    present(camel).or_else(|| present(snake))
}

fn name<'a>(
    object: &'a Map<String, Value>,
    camel: &'static str,
    snake: &str,
) -> Result<&'a str, HandlerError> {
    match field(object, camel, snake) {
        None | Some(Value::Null) => Err(HandlerError::invalid_event(camel, "is required")),
        Some(Value::String(s)) if s.trim().is_empty() => {
            Err(HandlerError::invalid_event(camel, "must not be empty"))
        }
        Some(Value::String(s)) => Ok(s.trim()),
        Some(other) => Err(HandlerError::invalid_event(
            camel,
            format!("must be a string, not {}", json_type(other)),
        )),
    }
}

fn age(object: &Map<String, Value>) -> Result<u64, HandlerError> {
    match object.get("age") {
        None | Some(Value::Null) => Err(HandlerError::invalid_event("age", "is required")),
        Some(Value::Number(n)) => match (n.as_u64(), n.as_i64()) {
            (Some(age), _) => Ok(age),
            (None, Some(_)) => Err(HandlerError::invalid_event(
                "age",
                format!("must not be negative, got {n}"),
            )),
            (None, None) => Err(HandlerError::invalid_event(
                "age",
                format!("must be a whole number, got {n}"),
            )),
        },
        Some(other) => Err(HandlerError::invalid_event(
            "age",
            format!("must be a number, not {}", json_type(other)),
        )),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::SIMPLE_EXCEPTION_MESSAGE;
    use lambda_observability::FunctionError;
    use proptest::prelude::*;
    use serde_json::json;

    // Port of the original's first test: the happy path.
    #[test]
    fn greets_and_converts_the_age() {
        let event = json!({"firstName": "Bogdan-Eugen", "lastName": "Mihai", "age": 34, "throwError": false});
        let greeting = process_request(&event, "cargo").expect("valid event");
        assert_eq!(
            greeting.greeting,
            "Hello Bogdan-Eugen Mihai, this is a Rust AWS Lambda function developed using cargo!"
        );
        assert_eq!(greeting.result, "Your age in hexadecimal is 0x22");
    }

    // Port of the original's second test: the caller asks for an error.
    #[test]
    fn throws_when_asked() {
        let event = json!({"firstName": "Bogdan-Eugen", "lastName": "Mihai", "age": 34, "throwError": true});
        let error = process_request(&event, "cargo").expect_err("must throw");
        assert_eq!(error.error_type(), "SimpleException");
        assert_eq!(error.to_string(), SIMPLE_EXCEPTION_MESSAGE);
    }

    #[test]
    fn accepts_snake_case_and_missing_throw_error() {
        let event = json!({"first_name": "Ada", "last_name": "Lovelace", "age": 0});
        let greeting = process_request(&event, "pip").expect("valid");
        assert!(greeting.greeting.starts_with("Hello Ada Lovelace,"));
        assert!(greeting.greeting.ends_with("using pip!"));
        assert_eq!(greeting.result, "Your age in hexadecimal is 0x0");
        let thrown = process_request(&json!({"throw_error": true}), "cargo").expect_err("throws");
        assert_eq!(thrown.error_type(), "SimpleException");
    }

    #[test]
    fn invalid_events_name_the_offending_field() {
        let cases = [
            (
                json!({"lastName": "M", "age": 1}),
                "firstName",
                "is required",
            ),
            (
                json!({"firstName": " ", "lastName": "M", "age": 1}),
                "firstName",
                "must not be empty",
            ),
            (
                json!({"firstName": 7, "lastName": "M", "age": 1}),
                "firstName",
                "must be a string, not a number",
            ),
            (
                json!({"firstName": "B", "age": 1}),
                "lastName",
                "is required",
            ),
            (
                json!({"firstName": "B", "lastName": "M"}),
                "age",
                "is required",
            ),
            (
                json!({"firstName": "B", "lastName": "M", "age": -1}),
                "age",
                "must not be negative",
            ),
            (
                json!({"firstName": "B", "lastName": "M", "age": 3.5}),
                "age",
                "must be a whole number",
            ),
            (
                json!({"firstName": "B", "lastName": "M", "age": "34"}),
                "age",
                "must be a number, not a string",
            ),
            (
                json!({"firstName": "B", "lastName": "M", "age": 1, "throwError": "yes"}),
                "throwError",
                "must be a boolean",
            ),
        ];
        for (event, field, reason) in cases {
            let error = process_request(&event, "cargo").expect_err("invalid");
            assert_eq!(error.error_type(), "InvalidEvent", "{event}");
            assert_eq!(error.kind(), lambda_observability::ErrorKind::Client);
            assert_eq!(error.field(), Some(field), "{event}");
            let message = error.to_string();
            assert!(
                message.contains(field) && message.contains(reason),
                "{event}: {message}"
            );
        }
    }

    #[test]
    fn non_objects_are_invalid_events() {
        for event in [json!([1, 2]), json!("text"), json!(null), json!(42)] {
            let error = process_request(&event, "cargo").expect_err("invalid");
            assert_eq!(
                (error.error_type(), error.field()),
                ("InvalidEvent", Some("event"))
            );
        }
    }

    #[test]
    fn a_caller_cannot_forge_an_error_message_with_a_marker_object() {
        // Once the marker of the old in-band scheme: now just an object without the fields.
        let forged = json!({"$malformedEvent": "the event is not valid JSON: forged"});
        let error = process_request(&forged, "cargo").expect_err("invalid");
        assert_eq!(error.field(), Some("firstName"));
        assert!(!error.to_string().contains("forged"), "{error}");
    }

    #[test]
    fn a_null_camel_case_field_does_not_hide_the_snake_case_one() {
        let event =
            json!({"firstName": null, "first_name": "Ada", "lastName": "Lovelace", "age": 36});
        let greeting = process_request(&event, "cargo").expect("valid");
        assert!(greeting.greeting.starts_with("Hello Ada Lovelace,"));
    }

    #[test]
    fn large_ages_convert_exactly() {
        let event = json!({"firstName": "B", "lastName": "M", "age": u64::MAX});
        let greeting = process_request(&event, "cargo").expect("valid");
        assert_eq!(
            greeting.result,
            "Your age in hexadecimal is 0xffffffffffffffff"
        );
    }

    fn arbitrary_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::hash_map(
                    prop_oneof![
                        Just("firstName".to_owned()),
                        Just("lastName".to_owned()),
                        Just("age".to_owned()),
                        Just("throwError".to_owned()),
                        ".{0,6}"
                    ],
                    inner,
                    0..5
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        // Any event whatsoever gets a greeting or a typed error, never a panic.
        #[test]
        fn any_event_gets_a_greeting_or_a_typed_error(event in arbitrary_json()) {
            match process_request(&event, "cargo") {
                Ok(greeting) => prop_assert!(greeting.result.starts_with("Your age in hexadecimal is 0x")),
                Err(error) => prop_assert!(["InvalidEvent", "SimpleException"].contains(&error.error_type())),
            }
        }

        #[test]
        fn every_non_negative_age_round_trips_through_hex(age in any::<u64>()) {
            let greeting = process_request(&json!({"firstName": "B", "lastName": "M", "age": age}), "cargo").expect("valid");
            let hex = greeting.result.trim_start_matches("Your age in hexadecimal is 0x");
            prop_assert_eq!(u64::from_str_radix(hex, 16).ok(), Some(age));
        }
    }
}
