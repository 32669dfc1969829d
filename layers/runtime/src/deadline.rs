//! The invocation deadline, read robustly.
//!
//! Lambda sends `Lambda-Runtime-Deadline-Ms` as milliseconds since the Unix epoch. Some local
//! emulators (`cargo lambda watch` among them) send the function timeout in milliseconds instead
//! (e.g. `600000`). A value that small cannot be an epoch time (it would be 1970), so it is read
//! as a timeout counted from now; otherwise every emulated invocation would look already expired.

use std::time::{Duration, SystemTime};

/// Values below this (September 2001 in epoch milliseconds) are read as a relative timeout.
const EPOCH_MS_FLOOR: u64 = 1_000_000_000_000;

/// The deadline of an invocation whose `Lambda-Runtime-Deadline-Ms` is `deadline_ms`.
pub fn deadline(deadline_ms: u64) -> SystemTime {
    if deadline_ms < EPOCH_MS_FLOOR {
        SystemTime::now() + Duration::from_millis(deadline_ms)
    } else {
        SystemTime::UNIX_EPOCH + Duration::from_millis(deadline_ms)
    }
}

/// Time left until `deadline`, zero when it has passed.
pub fn remaining(deadline: SystemTime) -> Duration {
    deadline
        .duration_since(SystemTime::now())
        .unwrap_or_default()
}

/// Time left in the invocation described by `context`.
pub fn remaining_in(context: &lambda_runtime::Context) -> Duration {
    remaining(deadline(context.deadline))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_deadlines_and_emulator_timeouts_both_leave_time() {
        let in_ten_seconds = SystemTime::now() + Duration::from_secs(10);
        let epoch_ms = in_ten_seconds
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let left = remaining(deadline(epoch_ms));
        assert!(
            left > Duration::from_secs(8) && left <= Duration::from_secs(10),
            "{left:?}"
        );
        let left = remaining(deadline(600_000));
        assert!(
            left > Duration::from_secs(590) && left <= Duration::from_secs(600),
            "{left:?}"
        );
        assert_eq!(
            remaining(deadline(EPOCH_MS_FLOOR)),
            Duration::ZERO,
            "2001 is in the past"
        );
    }
}
