-- Languages. user_settings.language is the user's /language choice (a shipped language code such as
-- 'es'; NULL: follow the platform). users.locale is the language the platform last reported for the
-- user (Telegram's language_code, Discord's locale, e.g. 'es-ES'; NULL: never reported): it answers
-- where a message carries no language (a Discord DM, a notification sent outside a request). Both go
-- with the user (/forget deletes the row).
ALTER TABLE user_settings
    ADD COLUMN language TEXT CHECK (language IS NULL OR length(language) BETWEEN 2 AND 16);
ALTER TABLE users
    ADD COLUMN locale TEXT CHECK (locale IS NULL OR length(locale) BETWEEN 1 AND 35);
