//! The command line.

use std::time::Duration;

pub(super) struct Config {
    pub(super) clients: usize,
    /// `None`: run until interrupted.
    pub(super) run_for: Option<Duration>,
    /// Add [`FUZZERS`] clients that send random bytes.
    pub(super) fuzz: bool,
}

impl Config {
    pub(super) fn from_args(args: Vec<String>) -> Result<Config, String> {
        let mut config = Config {
            clients: 8,
            run_for: Some(Duration::from_secs(4)),
            fuzz: false,
        };
        let mut forever = false;
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or(format!("{flag} needs a value"));
            match flag.as_str() {
                "--clients" => {
                    config.clients = value()?
                        .parse()
                        .ok()
                        .filter(|n| (0..=500).contains(n))
                        .ok_or("--clients takes a number in 0..=500")?;
                }
                "--seconds" => {
                    let seconds: f64 = value()?
                        .parse()
                        .ok()
                        .filter(|s: &f64| s.is_finite() && *s > 0.0 && *s < 1e6)
                        .ok_or("--seconds takes a positive number")?;
                    config.run_for = Some(Duration::from_secs_f64(seconds));
                }
                "--run-forever" => forever = true,
                "--fuzz" => {
                    let seconds: f64 = value()?
                        .parse()
                        .ok()
                        .filter(|s: &f64| s.is_finite() && *s > 0.0 && *s < 1e6)
                        .ok_or("--fuzz takes a positive number of seconds")?;
                    config.run_for = Some(Duration::from_secs_f64(seconds));
                    config.fuzz = true;
                }
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        if forever {
            if config.fuzz {
                return Err("--fuzz runs for a set time: not with --run-forever".to_owned());
            }
            config.run_for = None;
        }
        Ok(config)
    }
}
