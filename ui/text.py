"""Text that a user typed or a feed supplied, shown as text: never as Markdown or HTML.

Streamlit renders the strings given to `st.markdown`, `st.caption`, `st.info` and the
other alerts, `st.toast`, expander and tab labels and metric labels as GitHub-flavoured
Markdown with its own directives: `:red[…]` and `:blue-badge[…]` colours, `:material/…:`
icons, `:smile:` emoji short codes, `$…$` LaTeX, images `![](url)` (which the reader's
browser fetches), links and bare URLs. A name, justification or note shown that way lets
one user format, link or fetch in another user's browser: `plain` turns such a value into
Markdown that reads back as exactly its characters. The map's tooltips are HTML
(`innerHTML`): `html_text` escapes a value for them.

Widgets that never read Markdown (the options of `st.selectbox` and `st.multiselect`,
`st.text`, `st.code`, dataframe cells) take the value as it is.
"""

from __future__ import annotations

import html
import re

# Every ASCII punctuation character may be backslash-escaped in CommonMark, and an escaped
# one is a literal character: no emphasis, link, image, heading, list, table, HTML tag,
# entity, LaTeX `$`, directive `:x[…]` or bare-URL autolink (`http\://`, `www\.`) starts.
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
# Emoji short codes and `:material/…:` icons are found in the text after the escapes are
# read, so a word joiner (U+2060, no glyph, no width) after each colon keeps `:smile:`
# from matching without changing what is seen.
_COLON = "\\:\u2060"
# GitHub's bare `www.` and e-mail autolinks are also found in the text: a word joiner
# after `www` and after `@` stops them as well.
_AUTOLINK = re.compile(r"(www)(?=\\\.)|(@)", re.IGNORECASE)
# Streamlit's typographer turns ` -- ` into a dash and `->`, `<-` into arrows, in the text:
# a word joiner between the two characters keeps them as typed.
_TYPOGRAPHY = re.compile(r"(?<=\\-)(?=\\[->])|(?<=\\<)(?=\\-)")
# Four leading spaces make a code block and a line break needs two trailing ones; a
# leading no-break space keeps the indentation without either meaning.
_LEADING = re.compile(r"^[ \t]+", re.MULTILINE)


def plain(value: object) -> str:
    """`value` as Markdown that Streamlit shows as exactly its text.

    Parameters
    ----------
    value
        Anything; None is shown as an empty string, other values as `str(value)`.

    Returns
    -------
    str
        The text with every ASCII punctuation character backslash-escaped, a word joiner
        after each colon, `www`, `@` and
        inside `--`, `->` and `<-`, leading indentation as no-break spaces and each line
        break kept as a line break.
    """
    if value is None:
        return ""
    text = str(value).replace("\r\n", "\n").replace("\r", "\n")
    text = _PUNCTUATION.sub(lambda m: _COLON if m.group(1) == ":" else "\\" + m.group(1), text)
    text = _AUTOLINK.sub(lambda m: m.group(0) + "\u2060", text)
    text = _TYPOGRAPHY.sub("\u2060", text)
    text = _LEADING.sub(lambda m: "\u00a0" * len(m.group(0).expandtabs(4)), text)
    return text.replace("\n", "  \n")


def html_text(value: object) -> str:
    """`value` escaped for an HTML context (the map's tooltips), quotes included."""
    return "" if value is None else html.escape(str(value), quote=True)
