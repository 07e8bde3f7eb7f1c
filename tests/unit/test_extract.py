"""Bytes → corpus documents, on real web pages, real PDFs written by fpdf2, and real files read back by
`index.documents` (no network, no model)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from fpdf import FPDF

from index.documents import load_document
from index.extract import MAX_FIELD, Extracted, ExtractError, document_name, extract, to_markdown

ARTICLE = b"""<!DOCTYPE html>
<html><head><title>Rowing: A History | The Boat Gazette</title>
<meta name="author" content="Jane Doe">
<meta property="og:site_name" content="The Boat Gazette">
<meta property="article:published_time" content="2024-03-05">
</head><body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/sports">Sports</a></li>
<li><a href="/about">About us</a></li></ul></nav>
<div class="ad">Buy our premium subscription now! Special offer!</div>
<article>
<h1>Rowing: A History</h1>
<p>Rowing is one of the oldest sports in the world. The first recorded races took place on the Thames in the early
eighteenth century, when watermen competed for a coat and badge.</p>
<p>Modern racing shells are built of carbon fibre and weigh as little as fourteen kilograms. Crews of eight sit in a
line with a coxswain steering from the stern.</p>
<h2>The Boat Race</h2>
<p>The Boat Race between Oxford and Cambridge has been rowed since 1829 over a course of more than four miles on the
tidal Thames.</p>
</article>
<section id="comments" class="comments"><h3>Comments</h3>
<div class="comment"><p>Great article, I loved it so much!</p></div></section>
<footer>Copyright 2024 The Boat Gazette. All rights reserved. <a href="/privacy">Privacy</a></footer>
</body></html>
"""
PAGE_ONE = (
    "The first bridge over the river was built of timber in 1820. It stood for forty years until a flood carried "
    "it away in the spring of 1860, together with the mill beside it."
)
PAGE_TWO = "The iron bridge of 1901 still carries traffic today, after a careful restoration in 1987."


def two_page_pdf(title: str | None = "Bridges: A Survey") -> bytes:
    """A real PDF: two paragraphs on page 1, one on page 2."""
    pdf = FPDF()
    if title:
        pdf.set_title(title)
    pdf.set_author("Ann Engineer")
    pdf.set_font("Helvetica", size=11)
    pdf.add_page()
    pdf.multi_cell(0, 6, PAGE_ONE)
    pdf.ln(6)
    pdf.multi_cell(0, 6, "A stone bridge replaced it.")
    pdf.add_page()
    pdf.multi_cell(0, 6, PAGE_TWO)
    return bytes(pdf.output())


def written(tmp_path: Path, extracted: Extracted, origin: str = "file") -> Path:
    """The document as the corpus would hold it."""
    path = tmp_path / document_name(extracted)
    path.write_text(to_markdown(extracted, origin, "2026-01-02"), encoding="utf-8")
    return path


def refusal(data: bytes, **declared: str) -> str:
    with pytest.raises(ExtractError) as caught:
        extract(data, **declared)
    message = str(caught.value)
    assert "\n" not in message, "a refusal is one line"
    return message


def test_a_web_page_keeps_its_main_text_and_metadata_but_not_navigation_ads_or_comments() -> None:
    page = extract(ARTICLE, content_type="text/html; charset=utf-8", url="https://example.com/rowing")
    assert page.title == "Rowing: A History"
    assert page.meta == {
        "source": "The Boat Gazette",
        "date": "2024-03-05",
        "author": "Jane Doe",
        "url": "https://example.com/rowing",
    }
    assert "watermen competed for a coat and badge." in page.text
    for noise in ("About us", "premium subscription", "loved it", "All rights reserved"):
        assert noise not in page.text
    assert "\n\nModern racing shells" in page.text, "paragraphs are separated by blank lines"


def test_html_is_recognised_by_its_markup_when_nothing_is_declared() -> None:
    assert extract(ARTICLE).title == "Rowing: A History"
    assert extract(ARTICLE, content_type="application/octet-stream").meta["author"] == "Jane Doe"


def test_a_web_page_becomes_a_corpus_document_with_its_title_quoted(tmp_path: Path) -> None:
    path = written(tmp_path, extract(ARTICLE, url="https://example.com/rowing"), origin="url")
    front = yaml.safe_load(path.read_text(encoding="utf-8").split("---\n")[1])
    assert front == {
        "title": "Rowing: A History",
        "source": "The Boat Gazette",
        "url": "https://example.com/rowing",
        "date": "2024-03-05",
        "author": "Jane Doe",
        "added": "2026-01-02",
        "origin": "url",
    }
    doc = load_document(path, path.name)
    assert (doc.title, doc.source, doc.url, doc.date) == (
        "Rowing: A History",
        "The Boat Gazette",
        "https://example.com/rowing",
        "2024-03-05",
    )
    assert doc.paragraph_text(doc.paragraphs[0]).startswith("Rowing is one of the oldest sports")
    assert all(p.page is None for p in doc.paragraphs), "a web page has no pages"


def test_a_page_without_main_text_is_refused() -> None:
    menu = b"<html><body><nav><a href='/'>Home</a> <a href='/news'>News</a></nav></body></html>"
    assert "has no main text" in refusal(menu, content_type="text/html", url="https://example.com/")


def test_a_pdf_keeps_its_pages_as_markers_and_its_metadata() -> None:
    pdf = extract(two_page_pdf(), content_type="application/pdf", filename="bridges.pdf")
    assert pdf.title == "Bridges: A Survey"
    assert pdf.meta["author"] == "Ann Engineer"
    assert pdf.text == f"<!-- page 1 -->\n\n{PAGE_ONE}\n\nA stone bridge replaced it.\n\n<!-- page 2 -->\n\n{PAGE_TWO}"


def test_a_pdf_document_gives_each_paragraph_its_page_and_numbers_them_consecutively(tmp_path: Path) -> None:
    path = written(tmp_path, extract(two_page_pdf(title=None), filename="bridges.pdf"))
    doc = load_document(path, path.name)
    assert doc.title == PAGE_ONE[:200], "without a PDF title the first line is the title"
    assert [(p.number, p.page) for p in doc.paragraphs] == [(1, 1), (2, 1), (3, 2)]
    assert doc.paragraph_text(doc.paragraphs[2]) == PAGE_TWO
    assert "<!-- page" not in " ".join(doc.paragraph_text(p) for p in doc.paragraphs)


def test_a_pdf_without_text_is_refused_as_a_scan() -> None:
    pdf = FPDF()
    pdf.add_page()
    pdf.rect(10, 10, 50, 50)
    assert "looks like a scan: no text to extract" in refusal(bytes(pdf.output()), filename="scan.pdf")


def test_a_password_protected_or_broken_pdf_is_refused() -> None:
    pdf = FPDF()
    pdf.set_encryption(owner_password="owner", user_password="secret")
    pdf.add_page()
    pdf.set_font("Helvetica")
    pdf.cell(text="Hidden.")
    assert "password-protected" in refusal(bytes(pdf.output()), filename="locked.pdf")
    assert "not a readable PDF" in refusal(b"%PDF-1.4 and then nothing", filename="broken.pdf")


def test_a_declared_pdf_that_is_not_one_is_refused() -> None:
    message = refusal(b"<html><body>hello</body></html>", content_type="application/pdf", url="https://x.test/a")
    assert message == "https://x.test/a is declared as a PDF but is not one (it does not start with %PDF-)"
    assert "does not start with %PDF-" in refusal(b"plain words", filename="report.pdf")


@pytest.mark.parametrize(
    ("data", "declared", "message"),
    [
        (
            two_page_pdf(),
            {"filename": "notes.txt"},
            "notes.txt is a PDF but is declared as .txt: send it as a .pdf file",
        ),
        (two_page_pdf(), {"filename": "page.html"}, "page.html is a PDF but is declared as .html: send it as a .pdf"),
        (
            two_page_pdf(),
            {"content_type": "text/html; charset=utf-8", "url": "https://x.test/a"},
            "https://x.test/a is a PDF but is declared as text/html: send it as a .pdf file",
        ),
        (
            ARTICLE,
            {"filename": "rowing.md"},
            "rowing.md is a web page (HTML) but is declared as .md: send it as a .html",
        ),
        (ARTICLE, {"content_type": "text/plain"}, "the document is a web page (HTML) but is declared as text/plain"),
    ],
)
def test_a_type_its_name_or_content_type_contradicts_is_refused(
    data: bytes, declared: dict[str, str], message: str
) -> None:
    assert refusal(data, **declared).startswith(message)


def test_a_nul_byte_anywhere_refuses_a_text_file() -> None:
    text = b"Plain words. " * 1000 + b"\0 and more words."
    assert refusal(text, filename="notes.txt") == (
        "notes.txt holds binary data (a NUL byte at byte 13,000), which is not a supported type: send one of "
        ".txt .md .html .pdf"
    )
    assert "binary data" in refusal(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", filename="photo.md")
    assert extract(text.replace(b"\0", b""), filename="notes.txt").title.startswith("Plain words.")


def test_a_web_page_without_a_doctype_is_read_as_html_when_declared_so() -> None:
    fragment = ARTICLE.split(b"<body>", 1)[1]
    assert "watermen competed" in extract(fragment, content_type="text/html").text


@pytest.mark.parametrize(
    ("data", "declared"),
    [
        (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", {"filename": "photo.png"}),
        (b"PK\x03\x04 some zip", {"filename": "report.docx"}),
        (b"GIF89a", {"content_type": "image/gif"}),
        (b"\0\x01\x02 binary", {}),
    ],
)
def test_unsupported_types_are_refused_with_the_supported_list(data: bytes, declared: dict[str, str]) -> None:
    assert refusal(data, **declared).endswith("is not a supported type: send one of .txt .md .html .pdf")


def test_markdown_is_kept_as_is_with_its_own_front_matter() -> None:
    source = "---\ntitle: 'Oars: a guide'\ndate: 2023-05-01\n---\n# Oars\n\nBlades are spoon shaped.\r\n\r\nLooms.\n"
    doc = extract(source.encode("utf-8"), filename="oars.md")
    assert (doc.title, doc.meta) == ("Oars: a guide", {"date": "2023-05-01"})
    assert doc.text == "# Oars\n\nBlades are spoon shaped.\n\nLooms."


def test_plain_text_takes_its_title_from_the_first_line_and_refuses_other_encodings() -> None:
    doc = extract("\ufeffSculling\n\nOne rower, two oars.\n".encode(), content_type="text/plain")
    assert (doc.title, doc.text) == ("Sculling", "Sculling\n\nOne rower, two oars.")
    assert "not UTF-8 text" in refusal("Ruderregatta in Köln".encode("latin-1"), filename="köln.txt")
    assert "has no text" in refusal(b"  \n\n ", filename="empty.md")
    assert "front matter is not valid YAML" in refusal(b"---\ntitle: [unclosed\n---\nBody.\n", filename="bad.md")


def test_to_markdown_quotes_awkward_titles_and_keeps_them_on_one_line(tmp_path: Path) -> None:
    title = "Wins: 'Oxford' vs \"Cambridge\" # 2024\n  – a recap"
    extracted = Extracted(title, "Body paragraph one.\n\nBody two.", {"url": "https://example.com/a?b=1#c"})
    text = to_markdown(extracted, "url", "2026-01-02")
    assert text.startswith("---\n") and text.endswith("\n---\n\nBody paragraph one.\n\nBody two.\n")
    assert yaml.safe_load(text.split("---\n")[1]) == {
        "title": "Wins: 'Oxford' vs \"Cambridge\" # 2024 – a recap",
        "url": "https://example.com/a?b=1#c",
        "added": "2026-01-02",
        "origin": "url",
    }
    path = tmp_path / "a.md"
    path.write_text(text, encoding="utf-8")
    assert load_document(path, "a.md").title == "Wins: 'Oxford' vs \"Cambridge\" # 2024 – a recap"


@pytest.mark.parametrize(
    ("title", "name"),
    [
        ("Rowing: A History", "rowing-a-history.md"),
        ("Ça coûte 5 €/kg — à Zürich", "ca-coute-5-kg-a-zurich.md"),
        ("../../etc/passwd", "etc-passwd.md"),
        ("C:\\Windows\\system32", "c-windows-system32.md"),
        ("!!!", "document.md"),
        ("", "document.md"),
        ("東京の橋", "document.md"),
        ("A very long title " * 10, "a-very-long-title-a-very-long-title-a-very-long-title-a-v.md"),
    ],
)
def test_document_name_is_a_short_safe_slug(title: str, name: str) -> None:
    assert document_name(Extracted(title, "text", {})) == name
    assert len(name) <= 60


def test_page_markers_are_exact_paragraphs_and_numbering_stays_consecutive(tmp_path: Path) -> None:
    path = tmp_path / "pages.md"
    path.write_text(
        "---\ntitle: Pages\n---\n\nBefore any page.\n\n<!-- page 3 -->\n\nOn page three.\n\n"
        "<!-- page 4 --> not a marker, a paragraph.\n\n<!--  page 5 -->\n\n<!-- page 9 -->\n\nOn page nine.\n",
        encoding="utf-8",
    )
    doc = load_document(path, "pages.md")
    assert [(p.number, p.page, doc.paragraph_text(p)) for p in doc.paragraphs] == [
        (1, None, "Before any page."),
        (2, 3, "On page three."),
        (3, 3, "<!-- page 4 --> not a marker, a paragraph."),
        (4, 3, "<!--  page 5 -->"),
        (5, 9, "On page nine."),
    ]


def test_front_matter_fields_are_cut_to_one_printable_line_so_any_metadata_reads_back(tmp_path: Path) -> None:
    extracted = Extracted("Bell\x07 " + "A" * 10_000, "Body.", {"author": "x\0y " * 5000})
    path = tmp_path / "long.md"
    path.write_text(to_markdown(extracted, "file", "2026-01-02"), encoding="utf-8")
    doc = load_document(path, "long.md")
    assert doc.title == ("Bell " + "A" * 10_000)[:MAX_FIELD]
