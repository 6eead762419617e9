//! French.

use super::{wait, Catalogue};

// French counts 0 and 1 in the singular: "0 essai", "1 essai", "2 essais".
const UNITS: [(&str, &str); 3] = [
    ("seconde", "secondes"),
    ("minute", "minutes"),
    ("heure", "heures"),
];

fn plural(count: u64, one: &'static str, many: &'static str) -> &'static str {
    if count <= 1 {
        one
    } else {
        many
    }
}

pub static FRENCH: Catalogue = Catalogue {
    name: "Français",
    switch_label: "Langue",

    sign_in_title: "Connexion",
    sign_in_to: |company| format!("Connexion à {company}"),
    email_label: "Adresse e-mail",
    password_label: "Mot de passe",
    sign_in_button: "Se connecter",
    problem_heading: "Un problème est survenu",

    code_title: "Consultez vos e-mails",
    code_sent_to: |masked| format!("Nous avons envoyé un code de connexion à 6 chiffres à {masked}."),
    code_recently_sent: |masked| {
        format!("Un code a été envoyé à {masked} il y a quelques instants : utilisez celui-ci, il est encore valable.")
    },
    code_valid_for: |minutes, until| {
        let unit = plural(minutes.unsigned_abs(), "minute", "minutes");
        format!("Il est valable {minutes} {unit}, jusqu’à {until}.")
    },
    code_label: "Code de connexion",
    code_hint: "Les 6 chiffres de l’e-mail. Vous pouvez coller le code entier.",
    verify_button: "Continuer",
    no_code_help: "Pas d’e-mail ? Regardez dans vos courriers indésirables, ou reconnectez-vous pour recevoir un nouveau code.",
    sign_in_again: "Se reconnecter",

    signed_in_title: "Connexion réussie",
    signed_in_to: |platform| format!("Votre connexion à {platform} a réussi."),
    continue_to: |platform| format!("Continuer vers {platform}"),

    missing_email: "Saisissez votre adresse e-mail.",
    missing_password: "Saisissez votre mot de passe.",
    password_too_long: "Ce mot de passe est trop long pour être le vôtre. Vérifiez-le et réessayez.",
    form_expired: "Cette page est restée ouverte trop longtemps, ou votre navigateur bloque les cookies. Saisissez à nouveau vos informations.",
    wrong_credentials: "L’adresse e-mail ou le mot de passe est incorrect. Vérifiez-les et réessayez.",
    email_not_accepted: "Cette adresse e-mail ne peut pas être celle d’un compte. Vérifiez-la et réessayez.",
    passwords_not_accepted: "Votre organisation ne se connecte pas ici avec un mot de passe. Utilisez la connexion de votre organisation.",
    network_blocked: "La connexion depuis ce réseau n’est pas autorisée. Réessayez depuis un autre réseau, ou contactez votre administrateur.",
    wait_for_new_code: |seconds| {
        format!(
            "Aucun nouveau code ne peut être envoyé pour l’instant. Attendez {}, puis reconnectez-vous.",
            wait(seconds, UNITS)
        )
    },
    code_pending_elsewhere: |seconds| {
        format!(
            "Un code vient d’être envoyé pour une connexion depuis un autre appareil. Attendez {}, puis reconnectez-vous ici. Si cette connexion ne venait pas de vous, changez votre mot de passe.",
            wait(seconds, UNITS)
        )
    },
    password_change_required: "Une connexion à votre compte a été signalée comme ne venant pas de vous : votre mot de passe doit être changé avant de pouvoir vous connecter avec. Réinitialisez votre mot de passe, ou contactez votre administrateur.",
    rate_limited: |seconds| match seconds {
        Some(seconds) => format!(
            "Trop de tentatives de connexion. Attendez {}, puis réessayez.",
            wait(seconds, UNITS)
        ),
        None => "Trop de tentatives de connexion. Attendez une minute, puis réessayez.".to_owned(),
    },
    still_deciding: "La connexion prend plus de temps que d’habitude. Réessayez dans un instant.",
    code_not_six_digits: "Saisissez les 6 chiffres de l’e-mail.",
    incorrect_code: |tries_left| {
        let tries = plural(u64::from(tries_left), "essai", "essais");
        format!("Ce code n’est pas le bon. Il vous reste {tries_left} {tries}.")
    },
    code_locked: "Trop de codes incorrects : ce code ne fonctionne plus. Pour en recevoir un nouveau, reconnectez-vous.",
    code_expired: "Ce code a expiré. Pour en recevoir un nouveau, reconnectez-vous.",
    code_superseded: "Un code plus récent a été envoyé : celui-ci ne fonctionne plus. Utilisez le dernier e-mail, ou reconnectez-vous pour un nouveau code.",
    code_revoked: "Ce code ne fonctionne plus car votre compte a été modifié après son envoi. Pour en recevoir un nouveau, reconnectez-vous.",
    code_already_used: "Ce code a déjà été utilisé. Pour vous reconnecter, saisissez vos informations.",
    code_undelivered: "Nous n’avons pas pu envoyer l’e-mail du code. Vérifiez votre adresse auprès de votre administrateur, ou reconnectez-vous plus tard.",
    challenge_unknown: "Cette connexion ne peut plus aboutir. Veuillez vous reconnecter.",
    unavailable: "La connexion est impossible pour le moment. Réessayez dans quelques minutes.",
};
