//! The address a code went to, as the code page shows it: enough for its owner to recognise,
//! too little for someone looking over a shoulder.

/// `alice@example.com` -> `a•••@example.com`. The domain stays whole (it tells which inbox to
/// open); of the local part only the first character is kept. Something without `@` is
/// shown as dots alone.
pub fn masked(email: &str) -> String {
    let email = email.trim();
    match email.rsplit_once('@') {
        Some((local, domain)) if !domain.is_empty() => {
            let first: String = local.chars().take(1).collect();
            format!("{first}•••@{domain}")
        }
        _ => "•••".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::masked;

    #[test]
    fn keeps_the_first_character_and_the_domain() {
        assert_eq!(masked("alice@example.com"), "a•••@example.com");
        assert_eq!(
            masked(" bob.smith+mfa@mail.example.org "),
            "b•••@mail.example.org"
        );
    }

    #[test]
    fn a_one_character_local_part_still_shows_dots() {
        assert_eq!(masked("a@example.com"), "a•••@example.com");
    }

    #[test]
    fn non_ascii_is_cut_on_a_character_boundary() {
        assert_eq!(masked("élodie@exemple.fr"), "é•••@exemple.fr");
    }

    #[test]
    fn something_that_is_not_an_address_shows_nothing_of_itself() {
        assert_eq!(masked("alice"), "•••");
        assert_eq!(masked("alice@"), "•••");
    }
}
