#!/usr/bin/env python
"""Writes tests/data/tokenizer_corpus.jsonl: the text corpus of the tokenizer parity tests and benchmark.

    python tools/make_tokenizer_corpus.py            # (re)writes the file; the output is byte-identical per run
    python tools/make_tokenizer_corpus.py --check    # exit 1 if the committed file differs from a fresh build

One JSON string per line, so newlines, CR and control characters survive. Stdlib only, no network, fixed seed.
The code points are written as literals or escapes here (never looked up with unicodedata), so the output does
not depend on the Python version's Unicode database; the one exception is NFD of Latin text, which the
Unicode normalization stability policy freezes.

Read it back with ``[json.loads(x) for x in path.read_text("utf-8").split("\\n") if x]``; do not use
str.splitlines(), which also splits on U+2028, U+0085 and friends (escaped in the file anyway).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import unicodedata
from pathlib import Path

SEED = 20240917
OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "tokenizer_corpus.jsonl"
MAX_BYTES = 1_500_000

# --------------------------------------------------------------------------------------------------------------
# English building blocks
# --------------------------------------------------------------------------------------------------------------

SUBJECTS = [
    "The committee", "My neighbour's cat", "A well-known physicist", "The old lighthouse keeper", "Our team",
    "She", "He", "They", "The server", "Every student", "The U.S. Senate", "Dr. O'Neill", "The mayor of New York",
    "A self-driving car", "Nobody", "The quick brown fox", "Grandma", "The C++ compiler", "This state-of-the-art model",
    "The board of directors", "Jean-Luc", "The 3rd-year students", "An anonymous donor", "The e-mail client",
    "Your co-worker", "The London Stock Exchange", "A group of twenty-two hikers", "The runtime", "I", "We",
]
VERBS = [
    "announced", "didn't expect", "couldn't believe", "has re-evaluated", "will never forget", "bought",
    "is analysing", "was asked about", "won't discuss", "repeatedly mentioned", "quietly approved", "rejected",
    "can't stop talking about", "downloaded", "re-wrote", "mis-configured", "loved", "shouldn't have sold",
    "would've ignored", "benchmarked", "tokenized", "paid for", "sent", "translated", "rebuilt",
]
OBJECTS = [
    "the new policy", "a 2,000.50-dollar invoice", "the results of the 2019 census", "her grandmother's recipe",
    "the long-awaited sequel", "3.14159 pies", "an out-of-date map", "the year-end report", "twenty-one roses",
    "the Wi-Fi password", "a brand-new MacBook Pro", "the 1990s sitcom", "$1,234,567.89 in cash",
    "approximately 50% of the budget", "the user's preferences", "a 12-page PDF", "the 'secret' ingredient",
    "the \"final\" version", "the README.md file", "the state's decision", "the CEO's e-mail", "a half-eaten sandwich",
    "the #1 bestseller", "the AT&T contract", "a 24/7 hotline", "the 9:30 a.m. meeting", "version 2.0.1-rc3",
]
TAILS = [
    "yesterday.", "last week!", "on Monday, 3 May 2021.", "without telling anyone...", "-- or so they say.",
    "(again).", "at 10:45pm.", "in the U.K.", "for the 100th time?!", "and that's that.", "; nobody cared.",
    "before breakfast.", "at https://example.com/news?id=42&lang=en.", "via support@example.org.",
    "with 99.9% certainty.", "—apparently.", "– really?", "in São Paulo.", "while it rained.", "", "!!!", "???",
    "at 5 o'clock.", "(see p. 12).", "[citation needed].", "in 2023/24.", "by e-mail: jane.doe+tag@mail.co.uk.",
]
ADVERBS = ["Honestly,", "However,", "Surprisingly,", "Well,", "In fact,", "Meanwhile,", "Oh no,", "Yes!", "So…",
           "Actually,", "Nevertheless,", "Of course,", ""]
CONTRACTIONS = ["I'm", "you're", "it's", "isn't", "we'll", "they'd", "can't", "won't", "y'all", "o'clock",
                "rock'n'roll", "ma'am", "'tis", "gov't", "shouldn't've", "it’s", "don’t", "l'homme", "d'Artagnan"]
WORDS = (
    "time year people way day man thing woman life child world school state family student group country problem "
    "hand part place case week company system program question work government number night point home water "
    "room mother area money story fact month lot right study book eye job word business issue side kind head "
    "house service friend father power hour game line end member law car city community name president team "
    "minute idea kid body information back parent face others level office door health person art war history "
    "party result change morning reason research girl guy moment air teacher force education tokenizer unaffable "
    "running jumped quickly beautiful international misunderstanding antidisestablishmentarianism photosynthesis "
    "electroencephalography pneumonoultramicroscopicsilicovolcanoconiosis supercalifragilisticexpialidocious "
    "COVID-19 GPT-4 iPhone eBay McDonald's JavaScript TensorFlow PyTorch NumPy macOS x86_64 aarch64 UTF-8 HTTP/2"
).split()
URLS = ["https://www.example.com/path/to/page.html?query=1&b=two#frag", "http://localhost:8080/api/v1/users/42",
        "ftp://files.example.org/pub/README", "www.google.com", "https://en.wikipedia.org/wiki/Ö_(disambiguation)",
        "https://例え.jp/パス", "mailto:someone@example.com", "file:///C:/Users/me/Desktop/notes.txt",
        "https://github.com/huggingface/tokenizers/issues/1234", "s3://bucket-name/key/with%20space.csv"]
EMAILS = ["john.smith@example.com", "a_b-c+d@sub.domain.io", "user@[192.168.0.1]", "\"quoted name\"@example.com",
          "ÄÖÜ@umlaut.de", "x@y.z", "first.last@company.co.uk"]
NUMBERS = ["2,000.50", "1,000,000", "3.14159", "-42", "+7", "1e-9", "6.022e23", "0x1F", "0b1010", "1/2", "¾", "½",
           "12:30", "2024-01-31", "31/12/1999", "#42", "No. 7", "50%", "$5", "€3,50", "£100", "¥1000", "₹250",
           "1st", "2nd", "3rd", "4th", "10⁶", "H₂O", "٣٤٥", "१२३", "一二三", "①②③", "Ⅻ", "１２３"]
PUNCT_RUNS = ["...", "!!!", "?!?!", "---", "--", "—", "–", "…", "***", "###", "@@@", "$$$", "%%%", "^^^", "&&&",
              "(((", ")))", "[[[", "]]]", "{{{", "}}}", "<<<", ">>>", "|||", "\\\\", "//", "~~~", "```", ";;;",
              ":::", ",,,", "'''", '"""', "¡¿", "«»", "‹›", "„“", "‘’", "“”", "′″", "§¶", "†‡", "•·", "°", "™©®"]
QUOTES = [('"', '"'), ("'", "'"), ("“", "”"), ("‘", "’"), ("«", "»"), ("„", "“"), ("‚", "‘"), ("「", "」"),
          ("『", "』"), ("‹", "›"), ("`", "`"), ("``", "''")]
HANDWRITTEN = [
    "Hello, world!", "hello world", "HELLO WORLD", "Hello World", "The quick brown fox jumps over the lazy dog.",
    "Don't you think it's a bit late? I'd say so.", "She said, \"It's not my problem.\" Then she left.",
    "He's a well-to-do, middle-aged man with a happy-go-lucky attitude.",
    "The price rose from $2,000.50 to $3,500.75 (a 75.02% increase).",
    "E-mail me at john.doe@example.com or visit https://example.com/~john/index.php?x=1&y=2.",
    "Mr. and Mrs. Smith arrived at 5 p.m. on Jan. 3rd, 2020.", "It's 9:00am... no wait, it's 9:05am!!!",
    "\"Why?\" 'Because.' «Pourquoi ?» „Darum.“ 「なぜ？」", "Wait -- what?! No... really???",
    "Use `pip install transformers==5.23.0` then run `python -m pytest -q`.",
    "C:\\Program Files\\App\\bin\\app.exe --flag=value", "/usr/local/lib/python3.11/site-packages/",
    "x = [1, 2, 3]; y = {'a': 1, \"b\": 2}; print(x[0] + y['a'])",
    "if (a && b || !c) { return a->b[c] << 2; }", "SELECT * FROM users WHERE id = 42 AND name LIKE '%bob%';",
    "<html><body><p class=\"x\">Hi &amp; bye</p></body></html>", "#include <stdio.h>\nint main(void) { return 0; }",
    "def f(x):\n    return x ** 2  # square\n", "a\tb\tc\nd\te\tf", "line one\r\nline two\rline three\n",
    "λx. x + 1", "∀ε>0 ∃δ>0: |x−a|<δ ⇒ |f(x)−f(a)|<ε", "E = mc²", "a² + b² = c²", "∑_{i=1}^{n} i = n(n+1)/2",
    "The U.S.A., U.K. and E.U. signed the accord.", "I.B.M. vs IBM vs i.b.m.", "A.I. and a.i. and AI",
    "Rock 'n' roll isn't dead, y'all.", "It's the dog's bone, not the dogs' bones.", "O'Reilly's books' covers",
    "state-of-the-art, up-to-date, mother-in-law, twenty-five, re-enter, co-operate, e-mail, T-shirt",
    "hashtags: #NLP #MachineLearning #100DaysOfCode @user_name", "Emoticons :) :-( ;-) :D XD <3 ¯\\_(ツ)_/¯",
    "The temperature is -5°C (23°F) today.", "Call +1 (555) 123-4567 ext. 89.", "ISBN 978-3-16-148410-0",
    "UUID 123e4567-e89b-12d3-a456-426614174000", "SHA 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "Base64: SGVsbG8gV29ybGQhIFRoaXMgaXMgYSB0ZXN0Lg==", "The file is 1.5MB (1,572,864 bytes).",
    "UNAFFABLE unaffable Unaffable UnAfFaBlE", "running runner runs ran run", "tokenization tokenizer tokenize",
]

# --------------------------------------------------------------------------------------------------------------
# Other scripts and Unicode edge cases (code points spelled out, see module doc)
# --------------------------------------------------------------------------------------------------------------

ACCENTED = [
    "Café crème brûlée à la mode", "naïve façade résumé coöperate", "Señor Muñoz and Ångström", "Zürich Köln München",
    "Œuvre, æther, Ærø, øre", "Dvořák Škoda Łódź Żółć", "Ĳsselmeer ĳs", "Þórður Ðóra", "São João Ação",
    "Crème Brûlée CAFÉ NAÏVE", "ÀÁÂÃÄÅ àáâãäå ÈÉÊË èéêë ÌÍÎÏ ìíîï ÒÓÔÕÖ òóôõö ÙÚÛÜ ùúûü Ýý ÿŸ Çç Ññ",
    "Vietnamese: Tiếng Việt có dấu, Hà Nội, Đà Nẵng, người", "Romanian: ș ț Ș Ț ş ţ", "Hungarian: ő ű Ő Ű",
    "Esperanto: ĉ ĝ ĥ ĵ ŝ ŭ", "Latvian: ā ē ī ū ķ ļ ņ ģ", "Yorùbá: ẹ ọ ṣ", "Navajo: ą́ ę́",
]
GREEK = ["Ελληνικά: Οδυσσέας, ΟΔΥΣΣΕΑΣ, σοφός, ΣΟΦΟΣ", "ὁ λόγος ἐστὶν", "ΣΙΣΥΦΟΣ Σίσυφος σίσυφος", "ΐ ΰ ϊ ϋ ς σ Σ",
         "Άλφα Βήτα Γάμμα Δέλτα", "ὦ ᾧ ᾯ ᾼ ῼ", "μικρός ΜΙΚΡΌΣ", "ΤΗΣ ΘΑΛΑΣΣΗΣ της θάλασσας"]
TURKISH_GERMAN = ["İstanbul ISTANBUL istanbul ıstanbul", "İi Iı İI ıi", "DİYARBAKIR Diyarbakır",
                  "ﬁnancial ﬂow ﬀ ﬃ ﬄ ﬅ ﬆ",
                  "Straße STRASSE straße ẞ GROẞ groß", "Maße Masse MASSE", "ǅ ǈ ǋ ǲ Ǆ ǆ", "ŉ ǰ ΐ ẖ ẘ ẙ ẚ",
                  "Ｆｕｌｌｗｉｄｔｈ ｌｅｔｔｅｒｓ １２３ ＡＢＣ ａｂｃ！？", "ｶﾀｶﾅ ﾊﾝｶｸ",
                  "Ⓐⓑⓒ ⒜⒝ ㋐ ㍿ ℌ ℍ ℕ ℙ ℚ ℝ ℤ",
                  "𝐁𝐨𝐥𝐝 𝑰𝒕𝒂𝒍𝒊𝒄 𝔉𝔯𝔞𝔨𝔱𝔲𝔯 𝕯𝖔𝖚𝖇𝖑𝖊 𝟘𝟙𝟚", "Kelvin K Ohm Ω Angstrom Å", "µ μ Μ", "ſ ẛ ﬅ"]
CHINESE = ["我爱北京天安门。", "今天天气很好，我们去公园散步吧！", "自然语言处理是人工智能的一个重要方向。",
           "中华人民共和国成立于1949年10月1日。", "他说：“你好，世界！”", "繁體中文與简体中文", "這是一個測試句子。",
           "机器学习和深度学习的区别是什么？", "价格是¥1,234.56元", "北京、上海、广州和深圳", "𠀀𠀁𠀂 𪚥 𰻞𰻞面",
           "中文English混合mixed文本text", "第1章 第2节 第3条"]
JAPANESE = ["こんにちは世界", "私は東京に住んでいます。", "カタカナとひらがなと漢字", "今日はいい天気ですね！",
            "ラーメンを食べたい", "日本語の文章を、トークン化します。", "ﾊﾝｶｸｶﾀｶﾅ と ゛゜ ヷ ヴ",
            "「こんにちは」と彼は言った。",
            "ー〜・ヽヾゝゞ々〆", "東京スカイツリーは634mです。"]
KOREAN = ["안녕하세요 세계", "한국어 문장을 토큰화합니다.", "대한민국의 수도는 서울입니다.", "ㄱㄴㄷㄹ ㅏㅑㅓㅕ",
          "한글과 漢字 혼용", "오늘 날씨가 좋네요!", "각 decomposed jamo ᄒᆞᆫ"]
CJK_COMPAT = ["\uf900\uf901\uf902 \uf91d\uf92c", "豈 更 車 賈 滑", "\ufa0e\ufa0f\ufa10 \ufa11",
              "\U0002f800\U0002f801 \U0002fa1d",
              "兀 \ufa70\ufad9", "㍻ ㍼ ㍽ ㍾ ㋿", "⺀ ⺁ ⼀ ⼁ ⿰ ⿻", "〇 〡 〢 〸",
              "\u3400\u4db5 \u9fff \U00020000 \U0002a6d6 \U00030000"]
ARABIC_HEBREW = ["مرحبا بالعالم", "اللغة العربية جميلة جداً.", "كتب الطالبُ الدرسَ", "١٢٣٤٥٦٧٨٩٠ ۱۲۳",
                 "الرقم 42 في النص", "שלום עולם", "עִבְרִית עם ניקוד", "זה מבחן. 123 abc", "\u200fRTL mark\u200e LTR",
                 "فارسی: سلام دنیا", "اردو: ہیلو دنیا", "ﷲ ﷺ ﻻ ﻼ"]
INDIC_THAI = ["नमस्ते दुनिया", "हिन्दी भाषा में वाक्य।", "क्षत्रिय ज्ञान", "संस्कृतम्", "বাংলা ভাষা", "தமிழ் மொழி",
              "ภาษาไทยไม่มีการเว้นวรรค", "สวัสดีครับ ยินดีต้อนรับ", "ພາສາລາວ", "ភាសាខ្មែរ", "မြန်မာဘာသာ",
              "ગુજરાતી", "ਪੰਜਾਬੀ", "తెలుగు", "ಕನ್ನಡ", "മലയാളം", "සිංහල", "བོད་སྐད", "ᠮᠣᠩᠭᠣᠯ", "ꦧꦱꦗꦮ",
              "Ελληνικά русский язык Українська мова Беларуская", "Հայերեն ქართული አማርኛ ᏣᎳᎩ ᐃᓄᒃᑎᑐᑦ"]
EMOJI = ["I love it 😀😃😄", "👍🏻👍🏼👍🏽👍🏾👍🏿", "👨‍👩‍👧‍👦 family", "🏳️‍🌈 🏴‍☠️", "🇺🇸🇬🇧🇫🇷🇯🇵 flags", "🇦",
         "\U0001fae8 shaking face \U0001faf7\U0001faf8 \U0001fa77 \U0001fabc", "❤️ ❤ ♥️ 💔", "1️⃣ #️⃣ *️⃣", "🧑🏽‍💻 👩🏿‍🚀",
         "😂😂😂😂😂", "text😀text", "emoji:🎉,🎊.", "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
         "☺ ☺️ ✌ ✌️", "🤷‍♂️🤷‍♀️", "🫠🫡🫢🫣🫤🫥", "🀄🃏🎴", "💯 ‼️ ⁉️ ™️ ©️ ®️"]

CONTROL = [chr(c) for c in range(0x00, 0x20)] + [chr(c) for c in range(0x7F, 0xA0)]
FORMAT = ["\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2060", "\ufeff", "\u00ad", "\u061c", "\u180e",
          "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u2061",
          "\u2062", "\u2063", "\u2064", "\U000e0001", "\U000e0020", "\U0001d173"]
WHITESPACE = ["\t", "\n", "\u000b", "\u000c", "\r", " ", "\u00a0", "\u1680", "\u2000", "\u2001", "\u2002", "\u2003",
              "\u2004", "\u2005", "\u2006", "\u2007", "\u2008", "\u2009", "\u200a", "\u2028", "\u2029", "\u202f",
              "\u205f", "\u3000", "\u0085", "\u001c", "\u001d", "\u001e", "\u001f"]
MISC_SPECIAL = ["\ufffd", "\ufffc", "\ufffe", "\uffff", "\ue000", "\uf8ff", "\U000f0000", "\U0010fffd",
                "\U0010ffff", "\u0378", "\u0379", "\u038b", "\u0530", "\u05ff", "\U0001fffe", "\U000e0000",
                "\U00050000", "\u2fff", "\U0001f8ff", "\u0000"]
COMBINING = ["\u0301", "\u0300", "\u0308", "\u0303", "\u0327", "\u030c", "\u0323", "\u0345", "\u20dd", "\u20e3",
             "\ufe0f", "\ufe0e", "\u064b", "\u05b7", "\u093f", "\u0e31", "\u302a", "\U0001d165", "\U000e0100"]
SPECIAL_TOKEN_TEXTS = [
    "[MASK]", "[SEP]", "[CLS]", "[PAD]", "[UNK]", "[mask]", "[Mask]", "[ MASK ]", "[MASK][MASK]", "x[MASK]y",
    "The capital of France is [MASK].", "[CLS] hello [SEP] world [SEP]", "[PAD][PAD][PAD]", "a [UNK] b",
    "[MASK] [MASK] [MASK]", "[[MASK]]", "[MASK", "MASK]", "[MASKS]", "[unused0] [unused1]", "##ing ##s", "##",
    "[SEP]x[CLS]", "hello[SEP]", " [MASK] ", "\t[MASK]\n", "[MASK]é", "é[MASK]", "[MÁSK]", "［MASK］",
    "<mask> <s> </s>",
]


# --------------------------------------------------------------------------------------------------------------
# generators
# --------------------------------------------------------------------------------------------------------------

def quoted(rng: random.Random, s: str) -> str:
    left, right = rng.choice(QUOTES)
    return f"{left}{s}{right}"


def sentence(rng: random.Random) -> str:
    """One English sentence from the word lists, decorated with the tricky bits BERT's pre-tokenizer splits on."""
    parts = [rng.choice(ADVERBS), rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS), rng.choice(TAILS)]
    r = rng.random()
    if r < 0.15:
        parts.insert(3, rng.choice(CONTRACTIONS))
    elif r < 0.25:
        parts.insert(3, rng.choice(NUMBERS))
    elif r < 0.32:
        parts.insert(3, rng.choice(URLS))
    elif r < 0.38:
        parts.insert(3, rng.choice(EMAILS))
    elif r < 0.45:
        parts.insert(3, rng.choice(PUNCT_RUNS))
    elif r < 0.55:
        parts[3] = quoted(rng, parts[3])
    elif r < 0.65:
        parts.insert(3, " ".join(rng.choice(WORDS) for _ in range(rng.randrange(1, 6))))
    s = " ".join(p for p in parts if p)
    r = rng.random()
    if r < 0.08:
        s = s.upper()
    elif r < 0.14:
        s = s.lower()
    elif r < 0.18:
        s = s.replace(" ", "  ")
    elif r < 0.21:
        s = s.replace(" ", "")  # one run-on "word": long words and punctuation glued to letters
    return s


def paragraph(rng: random.Random, n_words: int) -> str:
    out, count = [], 0
    while count < n_words:
        s = sentence(rng)
        out.append(s)
        count += len(s.split())
    return " ".join(out)


def prose(rng: random.Random, n: int) -> list:
    lines = []
    for _ in range(n):
        k = rng.choice((1, 1, 1, 2, 2, 3))
        lines.append(" ".join(sentence(rng) for _ in range(k)))
    return lines


def long_texts(rng: random.Random) -> list:
    # 300-2000 words: truncation and overflow windows get many windows; a few with newlines between paragraphs.
    lines = []
    for i, n in enumerate((300, 320, 350, 400, 450, 500, 512, 600, 700, 800, 1000, 1200, 1500, 2000)):
        text = paragraph(rng, n)
        if i % 3 == 0:
            text = text.replace(". ", ".\n\n", 5)
        lines.append(text)
    for script in (CHINESE, JAPANESE, KOREAN, ACCENTED, GREEK, ARABIC_HEBREW, EMOJI):
        lines.append(" ".join(rng.choice(script) for _ in range(60)))
    lines.append(" ".join(rng.choice(WORDS) for _ in range(700)))
    lines.append("".join(rng.choice(CHINESE) for _ in range(40)))  # CJK without spaces: one token per character
    return lines


def long_words(rng: random.Random) -> list:
    # BERT's WordPiece maps a word of more than 100 characters (after normalization) to [UNK].
    lines = []
    for n in (99, 100, 101, 102, 150, 200, 500):
        lines.append("a" * n)
        lines.append("ab" * (n // 2) + "a" * (n % 2))
        lines.append("x " + "z" * n + " y")
        lines.append("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n)))
    for n in (99, 100, 101):
        lines.append("é" * n)  # precomposed: 1 code point each
        lines.append("e\u0301" * n)  # decomposed: 2 code points each, 1 after accent stripping
        lines.append("E" * n)
        lines.append("1" * n)
        lines.append("ß" * n)
        lines.append("İ" * n)  # lowercases to 2 code points
        lines.append("ﬁ" * n)
        lines.append("a" * (n - 1) + "\u00ad")  # soft hyphen removed by cleaning
        lines.append("a" * (n - 1) + "\u200b" + "a")
        lines.append("anti" + "dis" * ((n - 4) // 3) + "establishment"[: (n - 4) % 3])
    lines.append("unaffable" * 12)
    lines.append("-".join(["well"] * 40))
    lines.append("😀" * 120)
    lines.append("我" * 120)
    return lines


def unicode_contexts() -> list:
    """Every special character alone and inside words, so the cleaning / splitting rules are hit one by one."""
    lines = []
    for c in CONTROL + FORMAT + WHITESPACE + MISC_SPECIAL + COMBINING:
        lines.extend([c, f"a{c}b", f"Hello{c}World", f" {c} ", f"{c}{c}{c}", f"word{c}", f"{c}word", f"[MASK]{c}x"])
    for c in COMBINING:
        lines.extend([f"{c}a", f"a {c} b", f"{c}", f"é{c}", f"{c}{c}", f"我{c}", f"1{c}2"])
    ws = "".join(WHITESPACE)
    lines.extend([ws, f"a{ws}b", f"{ws}word{ws}", "".join(CONTROL), "".join(FORMAT), "".join(MISC_SPECIAL)])
    return lines


def decomposed(lines: list) -> list:
    # NFD form of the accented lines: the same words with combining marks, which BERT's accent stripping removes.
    return [unicodedata.normalize("NFD", s) for s in lines] + [unicodedata.normalize("NFKC", s) for s in lines]


def scripts(rng: random.Random) -> list:
    groups = [ACCENTED, GREEK, TURKISH_GERMAN, CHINESE, JAPANESE, KOREAN, CJK_COMPAT, ARABIC_HEBREW, INDIC_THAI, EMOJI]
    lines = [s for g in groups for s in g]
    lines += decomposed(ACCENTED + GREEK + TURKISH_GERMAN + KOREAN)
    for _ in range(400):  # mixtures with English, like real multilingual text
        g = rng.choice(groups)
        lines.append(f"{sentence(rng)} {rng.choice(g)} {rng.choice(WORDS)}")
    for _ in range(150):
        lines.append(" ".join(rng.choice(rng.choice(groups)) for _ in range(rng.randrange(2, 6))))
    return lines


def specials(rng: random.Random) -> list:
    lines = list(SPECIAL_TOKEN_TEXTS)
    for _ in range(60):
        s = sentence(rng).split()
        s.insert(rng.randrange(len(s) + 1), rng.choice(SPECIAL_TOKEN_TEXTS[:10]))
        lines.append(" ".join(s))
    return lines


def empties() -> list:
    return ["", " ", "  ", "\t", "\n", "\r\n", " \t\n\r\u000b\u000c", "\u00a0", "\u3000", "\u200b", "\ufeff",
            "\u0000", "\u00ad", " \u200b ", "\u2028\u2029", "\u0085", "", "\u0301", "\ufffd"]


def random_codepoints(rng: random.Random, n: int) -> list:
    """Strings of code points drawn uniformly from the BMP and the SMP (no surrogates: not encodable)."""
    def cp():
        while True:
            c = rng.randrange(0x0000, 0x20000)
            if not 0xD800 <= c <= 0xDFFF:
                return chr(c)

    lines = []
    for i in range(n):
        length = rng.randrange(1, 40)
        chars = [cp() for _ in range(length)]
        if i % 3 == 0:  # sprinkle spaces so that some "words" are short enough to reach WordPiece
            for j in range(0, length, rng.randrange(2, 6)):
                chars[j] = " "
        if i % 5 == 0:  # and ASCII letters, so vocabulary words meet strange neighbours
            chars.insert(rng.randrange(len(chars) + 1), rng.choice(WORDS))
        lines.append("".join(chars))
    return lines


def random_mixtures(rng: random.Random, n: int) -> list:
    # Short strings from the interesting pools: more collisions between rules than uniform code points give.
    pools = [CONTROL, FORMAT, WHITESPACE, MISC_SPECIAL, COMBINING, list("abcXYZ019.,!'-#"), PUNCT_RUNS, NUMBERS,
             ["é", "e\u0301", "ß", "İ", "ı", "ς", "Σ", "ﬁ", "Ａ", "我", "か", "한", "😀", "🏽", "\u200d", "[MASK]"]]
    return ["".join(rng.choice(rng.choice(pools)) for _ in range(rng.randrange(1, 20))) for _ in range(n)]


def build() -> list:
    rng = random.Random(SEED)
    lines = []
    lines += HANDWRITTEN
    lines += prose(rng, 2200)
    lines += scripts(rng)
    lines += specials(rng)
    lines += empties()
    lines += unicode_contexts()
    lines += long_words(rng)
    lines += random_mixtures(rng, 600)
    lines += random_codepoints(rng, 700)
    lines += long_texts(rng)
    # Interleave deterministically so that batches mix short and long, ASCII and exotic lines, and so that the
    # pair tests (line i with line i + 1) combine different kinds of text.
    rng.shuffle(lines)
    return lines


# Characters some readers treat as line breaks (str.splitlines, editors): escaped although JSON allows them raw.
_ESCAPE = {c: f"\\u{ord(c):04x}" for c in ["\u0085", "\u2028", "\u2029"] + [chr(c) for c in range(0x7F, 0xA0)]}


def encode_line(s: str) -> str:
    out = json.dumps(s, ensure_ascii=False)
    return "".join(_ESCAPE.get(c, c) for c in out)


def render(lines: list) -> bytes:
    return ("\n".join(encode_line(s) for s in lines) + "\n").encode("utf-8")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(OUT), help="output file (default %(default)s)")
    ap.add_argument("--check", action="store_true", help="compare with the existing file instead of writing")
    a = ap.parse_args(argv)
    lines = build()
    data = render(lines)
    assert all(json.loads(x) == s for x, s in zip(data.decode("utf-8").split("\n"), lines)), "round trip failed"
    if len(data) > MAX_BYTES:
        print(f"corpus too large: {len(data)} bytes > {MAX_BYTES}", file=sys.stderr)
        return 1
    out = Path(a.out)
    if a.check:
        same = out.exists() and out.read_bytes() == data
        print(f"{out}: {'up to date' if same else 'DIFFERS from a fresh build'}")
        return 0 if same else 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    print(f"wrote {out}: {len(lines)} lines, {len(data):,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
