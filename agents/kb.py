"""A small knowledge base of help articles (`agents/data/kb/*.md`), searched with SQLite's FTS5 and BM25 ranking."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

__all__ = ('KB_DIR', 'Article', 'KnowledgeBase')

KB_DIR = Path(__file__).resolve().parent / 'data' / 'kb'
_WORD = re.compile(r'[a-z0-9]+')
# Words too common in support messages to say anything about which article fits.
_STOPWORDS = frozenset(
    [
        'a',
        'an',
        'and',
        'are',
        'be',
        'but',
        'can',
        'do',
        'does',
        'for',
        'from',
        'have',
        'hi',
        'i',
        'is',
        'it',
        'me',
        'my',
        'no',
        'not',
        'of',
        'on',
        'or',
        'order',
        'orders',
        'our',
        'please',
        'the',
        'this',
        'to',
        'was',
        'we',
        'what',
        'when',
        'where',
        'why',
        'with',
        'you',
        'your',
    ]
)


@dataclass(frozen=True)
class Article:
    """One help article: `slug` is its file name without `.md`, `title` its first heading."""

    slug: str
    title: str
    body: str


class KnowledgeBase:
    """Full-text search over the help articles, held in an in-memory FTS5 table."""

    def __init__(self, directory: Path = KB_DIR) -> None:
        self.articles: dict[str, Article] = {}
        for path in sorted(directory.glob('*.md')):
            lines = path.read_text().strip().splitlines()
            title = lines[0].lstrip('# ').strip()
            body = ' '.join(line.strip() for line in lines[1:] if line.strip())
            self.articles[path.stem] = Article(slug=path.stem, title=title, body=body)
        # Tools run in worker threads; the table is written once here and only read afterwards.
        self._db = sqlite3.connect(':memory:', check_same_thread=False)
        self._db.execute("CREATE VIRTUAL TABLE articles USING fts5(slug UNINDEXED, title, body, tokenize='porter')")
        self._db.executemany(
            'INSERT INTO articles VALUES (?, ?, ?)', [(a.slug, a.title, a.body) for a in self.articles.values()]
        )

    def search(self, query: str, limit: int = 3) -> list[Article]:
        """Articles matching any word of `query`, best first (BM25, title weighted above body)."""
        words = sorted(set(_WORD.findall(query.lower())) - _STOPWORDS)
        if not words:
            return []
        match = ' OR '.join(f'"{word}"' for word in words)
        rows = self._db.execute(
            'SELECT slug FROM articles WHERE articles MATCH ? ORDER BY bm25(articles, 0.0, 3.0, 1.0) LIMIT ?',
            (match, limit),
        ).fetchall()
        return [self.articles[slug] for (slug,) in rows]
