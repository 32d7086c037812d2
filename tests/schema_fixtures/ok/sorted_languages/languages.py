LANGUAGES = {
    "en": "english",
    "de": "german",
    "fr": "french",
    "es": "spanish",
    "ja": "japanese",
}

TO_LANGUAGE_CODE = {name: code for code, name in LANGUAGES.items()}
