//! The catalogs as minijinja templates see them: `t("key", name=value, …)`
//! writes a message in the language of the template's `locale` variable.
//! The emails and the reset page both register it, so a template override
//! can reuse any message and stay translated; and with it the HTML
//! escaping both share.

use std::sync::Arc;

use fluent_bundle::{FluentArgs, FluentValue};
use minijinja::value::Kwargs;
use minijinja::{Environment, Error, ErrorKind, State, Value};

use crate::{Catalogs, Lang};

pub fn register(env: &mut Environment<'static>, catalogs: Arc<Catalogs>) {
    env.set_formatter(html_formatter);
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

/// minijinja's formatter, except that HTML escaping leaves `/` alone: it
/// escapes `&`, `<`, `>`, `"` and `'`, which is all HTML needs in text and
/// quoted attributes. minijinja also writes `/` as `&#x2f;`, so a link read
/// in an email's source (or by a client showing it raw) was
/// `https:&#x2f;&#x2f;…`.
fn html_formatter(
    out: &mut minijinja::Output,
    state: &mut State,
    value: &Value,
) -> Result<(), Error> {
    if *state.auto_escape() == minijinja::AutoEscape::Html
        && !value.is_safe()
        && let Some(text) = value.as_str()
    {
        let mut rest = text;
        while let Some(at) = rest.find(['&', '<', '>', '"', '\'']) {
            out.write_str(&rest[..at])?;
            out.write_str(match rest.as_bytes()[at] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#x27;",
            })?;
            rest = &rest[at + 1..];
        }
        return Ok(out.write_str(rest)?);
    }
    minijinja::escape_formatter(out, state, value)
}

#[cfg(test)]
mod escaping_tests {
    use super::*;

    #[test]
    fn html_escapes_what_html_needs_and_leaves_slashes() {
        let mut env = Environment::new();
        let en = crate::Locale::parse("en").unwrap();
        register(&mut env, Arc::new(Catalogs::new(&en).unwrap()));
        env.add_template("t.html", "<a href=\"{{ v }}\">{{ v }}</a>{{ n }}")
            .unwrap();
        env.add_template("t.txt", "{{ v }}").unwrap();
        let v = "https://h/reset/a?b=1&c=<x>\"'";
        let html = env
            .get_template("t.html")
            .unwrap()
            .render(minijinja::context! { v, n => 5 })
            .unwrap();
        let escaped = "https://h/reset/a?b=1&amp;c=&lt;x&gt;&quot;&#x27;";
        assert_eq!(html, format!("<a href=\"{escaped}\">{escaped}</a>5"));
        let text = env
            .get_template("t.txt")
            .unwrap()
            .render(minijinja::context! { v })
            .unwrap();
        assert_eq!(text, v, "no escaping outside HTML");
    }
}
