//! The catalogs as minijinja templates see them: `t("key", name=value, …)`
//! writes a message in the language of the template's `locale` variable.
//! The emails and the reset page both register it, so a template override
//! can reuse any message and stay translated.

use std::sync::Arc;

use fluent_bundle::{FluentArgs, FluentValue};
use minijinja::value::Kwargs;
use minijinja::{Environment, Error, ErrorKind, State, Value};

use crate::{Catalogs, Lang};

pub fn register(env: &mut Environment<'static>, catalogs: Arc<Catalogs>) {
    env.add_function(
        "t",
        move |state: &State<'_, '_>, key: &str, kwargs: Kwargs| -> Result<String, Error> {
            let locale = state.lookup("locale");
            let lang = locale
                .as_ref()
                .and_then(Value::as_str)
                .and_then(Lang::by_tag)
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::UndefinedError,
                        "t(): the template's `locale` names no shipped catalog",
                    )
                })?;
            // A misspelt key fails the start-up trial, naming the line.
            if !catalogs.has(key) {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("t(): no message {key:?} in the catalogs"),
                ));
            }
            let mut args = FluentArgs::new();
            for name in kwargs.args() {
                let value: Value = kwargs.get(name)?;
                let fluent = match i64::try_from(value.clone()) {
                    Ok(n) if value.is_number() => FluentValue::from(n),
                    _ => FluentValue::from(value.to_string()),
                };
                args.set(name.to_string(), fluent);
            }
            Ok(catalogs.text(lang, key, &args))
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Locale;

    #[test]
    fn templates_write_messages_in_their_locale_and_refuse_unknown_keys() {
        let catalogs = Arc::new(Catalogs::new(&Locale::parse("en").unwrap()).unwrap());
        let mut env = Environment::new();
        register(&mut env, catalogs);
        let render = |src: &str, locale: &str| {
            env.render_str(src, minijinja::context! { locale, name => "Ada" })
        };
        let src = "{{ t('greeting-named', name=name) }} {{ t('rule-too-short', min=12) }}";
        assert_eq!(
            render(src, "de").unwrap(),
            "Hallo Ada, Das Passwort ist zu kurz: Verwenden Sie mindestens 12 Zeichen."
        );
        assert_eq!(
            render(src, "en").unwrap(),
            "Hello Ada, The password is too short: use at least 12 characters."
        );
        let e = render("{{ t('greting') }}", "en").unwrap_err().to_string();
        assert!(e.contains("no message \"greting\""), "{e}");
        let e = render("{{ t('greeting') }}", "xx").unwrap_err().to_string();
        assert!(e.contains("locale"), "{e}");
    }
}
