//! Parser for the value of `sasl.jaas.config`.
//!
//! Written by hand: no crate parses JAAS, and the grammar is small —
//! `<LoginModule class> <flag> (<option>=<value>)* ;` with values bare or in double quotes
//! (backslash escapes inside quotes, as Java's `StreamTokenizer` reads them). Whitespace of
//! any kind, including the line breaks and trailing spaces a `\`-continued properties value
//! leaves behind, separates tokens, and a missing final `;` is tolerated.

use std::collections::BTreeMap;
use std::fmt;

use ferry_connector_api::text::shown;

/// The login modules ferry translates to librdkafka settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginModule {
    /// `com.sun.security.auth.module.Krb5LoginModule` (GSSAPI).
    Kerberos,
    /// `org.apache.kafka.common.security.plain.PlainLoginModule`.
    Plain,
    /// `org.apache.kafka.common.security.scram.ScramLoginModule`.
    Scram,
    /// `org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule`.
    OAuthBearer,
    /// Anything else, by class name.
    Other(String),
}

impl LoginModule {
    fn from_class(class: &str) -> Self {
        // Match on the simple name, so shaded or vendor-prefixed class names still work.
        match class.rsplit('.').next().unwrap_or(class) {
            "Krb5LoginModule" => LoginModule::Kerberos,
            "PlainLoginModule" => LoginModule::Plain,
            "ScramLoginModule" => LoginModule::Scram,
            "OAuthBearerLoginModule" => LoginModule::OAuthBearer,
            _ => LoginModule::Other(class.to_string()),
        }
    }
}

/// A parsed `sasl.jaas.config`.
#[derive(Clone, PartialEq, Eq)]
pub struct JaasConfig {
    pub class: String,
    pub module: LoginModule,
    /// `required`, `requisite`, `sufficient` or `optional` (Kafka only honours `required`).
    pub flag: String,
    pub options: BTreeMap<String, String>,
}

impl fmt::Debug for JaasConfig {
    // Options hold passwords and client secrets: show option names only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JaasConfig")
            .field("class", &self.class)
            .field("flag", &self.flag)
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl JaasConfig {
    /// `true`/`false` option, Java-style (case-insensitive; absent → `default`).
    pub fn flag_option(&self, name: &str, default: bool) -> bool {
        self.options
            .get(name)
            .map_or(default, |v| v.eq_ignore_ascii_case("true"))
    }
}

/// A syntax error. The message names option names, never their values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JaasError(pub String);

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Equals,
    Semicolon,
}

fn tokenize(input: &str) -> Result<Vec<Token>, JaasError> {
    let mut tokens = Vec::new();
    let mut chars = input.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '=' => {
                chars.next();
                tokens.push(Token::Equals);
            }
            ';' => {
                chars.next();
                tokens.push(Token::Semicolon);
            }
            '"' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => {
                            return Err(JaasError(
                                "a double-quoted value is not closed; add the closing `\"`".into(),
                            ));
                        }
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e) => s.push(e),
                            None => {
                                return Err(JaasError(
                                    "the value ends inside a quoted string".into(),
                                ));
                            }
                        },
                        Some(other) => s.push(other),
                    }
                }
                tokens.push(Token::Quoted(s));
            }
            _ => {
                let mut s = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || c == '=' || c == ';' || c == '"' {
                        break;
                    }
                    s.push(c);
                    chars.next();
                }
                tokens.push(Token::Word(s));
            }
        }
    }
    Ok(tokens)
}

/// Parses one login module entry.
pub fn parse(input: &str) -> Result<JaasConfig, JaasError> {
    let tokens = tokenize(input)?;
    let mut it = tokens.into_iter().peekable();
    let class = match it.next() {
        Some(Token::Word(w)) => w,
        _ => {
            return Err(JaasError(
                "expected a login module class name first, e.g. `com.sun.security.auth.module.Krb5LoginModule required …;`"
                    .into(),
            ));
        }
    };
    let flag = match it.next() {
        Some(Token::Word(w))
            if ["required", "requisite", "sufficient", "optional"]
                .contains(&w.to_ascii_lowercase().as_str()) =>
        {
            w.to_ascii_lowercase()
        }
        _ => {
            return Err(JaasError(format!(
                "expected a control flag (`required`) after `{}`",
                shown(&class)
            )));
        }
    };
    let mut options = BTreeMap::new();
    while let Some(token) = it.next() {
        match token {
            Token::Semicolon => {
                if it.next().is_some() {
                    return Err(JaasError(
                        "only one login module may be configured; remove what follows the first `;`"
                            .into(),
                    ));
                }
                break;
            }
            Token::Word(name) => {
                if it.next() != Some(Token::Equals) {
                    return Err(JaasError(format!(
                        "option `{}` needs `=` and a value",
                        shown(&name)
                    )));
                }
                let value = match it.next() {
                    Some(Token::Word(v)) | Some(Token::Quoted(v)) => v,
                    _ => return Err(JaasError(format!("option `{}` has no value", shown(&name)))),
                };
                options.insert(name, value);
            }
            Token::Quoted(_) | Token::Equals => {
                return Err(JaasError(
                    "expected an option name (`name=value`); check for a stray `=` or quote".into(),
                ));
            }
        }
    }
    Ok(JaasConfig {
        module: LoginModule::from_class(&class),
        class,
        flag,
        options,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kerberos_entry_as_in_the_ztf_worker_file() {
        let j = parse(
            "com.sun.security.auth.module.Krb5LoginModule required \n   useKeyTab=true \n   storeKeyTab=true \n   serviceName=\"kafka\" \n   keyTab=\"/home/ztf_consumer/pitt-reader.user.keytab\" \n   principal=\"pitt-reader@KAFKA.SECURE\" \n   useTicketCache=false;  ",
        )
        .unwrap();
        assert_eq!(j.module, LoginModule::Kerberos);
        assert_eq!(j.flag, "required");
        assert!(j.flag_option("useKeyTab", false));
        assert!(!j.flag_option("useTicketCache", true));
        assert_eq!(
            j.options["keyTab"],
            "/home/ztf_consumer/pitt-reader.user.keytab"
        );
        assert_eq!(j.options["principal"], "pitt-reader@KAFKA.SECURE");
        assert_eq!(j.options["serviceName"], "kafka");
    }

    #[test]
    fn plain_scram_and_oauth_modules() {
        let p = parse(r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p\"w";"#).unwrap();
        assert_eq!(p.module, LoginModule::Plain);
        assert_eq!(p.options["password"], "p\"w");
        let s = parse("org.apache.kafka.common.security.scram.ScramLoginModule required username=u password=pw").unwrap();
        assert_eq!(s.module, LoginModule::Scram);
        assert_eq!(s.options["username"], "u");
        let o = parse("org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientId=\"id\" clientSecret=\"sec\" scope=\"gcn.nasa.gov/kafka-public-consumer\";").unwrap();
        assert_eq!(o.module, LoginModule::OAuthBearer);
        assert_eq!(o.options["scope"], "gcn.nasa.gov/kafka-public-consumer");
    }

    #[test]
    fn errors_name_options_but_never_values() {
        let err = parse(r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="topsecret"#).unwrap_err();
        assert!(err.0.contains("not closed"), "{err}");
        assert!(!err.0.contains("topsecret"));
        let err = parse("org.apache.kafka.common.security.plain.PlainLoginModule username=u;")
            .unwrap_err();
        assert!(err.0.contains("control flag"), "{err}");
        let err = parse("Krb5LoginModule required useKeyTab;").unwrap_err();
        assert_eq!(err.0, "option `useKeyTab` needs `=` and a value");
        let err = parse("A required a=1; B required b=2;").unwrap_err();
        assert!(err.0.contains("only one login module"), "{err}");
    }

    #[test]
    fn debug_output_hides_values() {
        let j = parse("PlainLoginModule required username=u password=hunter2;").unwrap();
        let shown = format!("{j:?}");
        assert!(
            shown.contains("password") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
