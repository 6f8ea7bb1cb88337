"""Parsed and validated documents, cached by their text: each document is checked once.

Without a cache every request parses and validates its document again (3 ms for `agent(id)`
with variables, measured in bench/). `DocumentCache` keeps the last `maxsize` documents that
reached validation, keyed by (document text, mode), with their validation errors: the same text
always parses to the same document and validates the same way, because the rules are fixed per
schema. The limits are part of those rules and of the parse: the token limit is a parse option
(a document over it is never parsed, so never cached), the depth and alias limits are validation
rules built once here, so they run once per cached document and a cached document has passed
them (or is cached with their errors).

What depends on the caller stays out: the introspection decision
(`pasar_graphql.production.SignedInIntrospection`) runs on every request, after validation.
Parse failures are not cached (they cost at most the token limit's worth of lexing).

Only documents up to `MAX_CACHED_CHARS` are cached: the token limit does not bound a document's
size (one long string literal is one token), so caching every text would let anonymous callers
fill a worker's memory with unique megabyte documents. A larger document is validated every
time; the cache holds at most `maxsize` x `MAX_CACHED_CHARS` characters of text.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from graphql import GraphQLError, GraphQLSchema
from graphql.language import DocumentNode
from graphql.validation import ASTValidationRule
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter, SchemaExtension
from strawberry.schema.schema import validate_document

from pasar_graphql.production import validate_without_suggestions
from pasar_graphql.secrets_alone import SecretMutationsAlone

DEFAULT_MAXSIZE = 256
MAX_CACHED_CHARS = 16 * 1024
Validate = Callable[
    [GraphQLSchema, DocumentNode, tuple[type[ASTValidationRule], ...]], list[GraphQLError]
]


@dataclass(frozen=True, slots=True)
class Limits:
    max_depth: int
    max_aliases: int
    max_tokens: int


@dataclass(frozen=True, slots=True)
class CheckedDocument:
    document: DocumentNode
    errors: tuple[GraphQLError, ...]


class DocumentCache:
    """A bounded LRU of checked documents for one schema, in one mode (`dev_mode`: field
    suggestions in errors; production mode hides them)."""

    def __init__(self, limits: Limits, *, dev_mode: bool, maxsize: int = DEFAULT_MAXSIZE) -> None:
        self.limits = limits
        self.dev_mode = dev_mode
        self.maxsize = maxsize
        self._validate: Validate = validate_document if dev_mode else validate_without_suggestions
        self._rules: tuple[type[ASTValidationRule], ...] = (
            *QueryDepthLimiter(max_depth=limits.max_depth).validation_rules,
            *MaxAliasesLimiter(max_alias_count=limits.max_aliases).validation_rules,
            SecretMutationsAlone,
        )
        self._entries: OrderedDict[tuple[str, bool], CheckedDocument] = OrderedDict()
        self.validations = 0
        """How many times a document was validated (not answered from the cache)."""

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def cached_chars(self) -> int:
        """The total length of the cached document texts."""
        return sum(len(query) for query, _ in self._entries)

    def document(self, query: str) -> DocumentNode | None:
        """The parsed document of `query` if it is cached."""
        entry = self._entries.get((query, self.dev_mode))
        return entry.document if entry is not None else None

    def cached(self, query: str) -> CheckedDocument | None:
        """The checked document of `query` if it is cached (its place in the LRU unchanged:
        `CachedDocuments` refreshes it when the request uses it)."""
        return self._entries.get((query, self.dev_mode))

    def check(
        self,
        schema: GraphQLSchema,
        query: str | None,
        document: DocumentNode,
        rules: tuple[type[ASTValidationRule], ...],
    ) -> CheckedDocument:
        """The validation of `query` (parsed as `document`), from the cache or done now with
        `rules` (the schema's own) and the limits; a document without its text, or longer than
        `MAX_CACHED_CHARS`, is validated every time."""
        if query is not None and (entry := self._entries.get((query, self.dev_mode))):
            self._entries.move_to_end((query, self.dev_mode))
            return entry
        self.validations += 1
        errors = self._validate(schema, document, (*rules, *self._rules))
        entry = CheckedDocument(document, tuple(errors))
        if query is not None and len(query) <= MAX_CACHED_CHARS:
            self._entries[(query, self.dev_mode)] = entry
            if len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)
        return entry


class CachedDocuments(SchemaExtension):
    """Parses with the token limit, validates with the depth and alias limits (without
    suggestions in production mode), both through the schema's `DocumentCache`; Strawberry
    then skips its own parsing and validation."""

    def __init__(self, cache: DocumentCache) -> None:
        self.cache = cache

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is None and context.query is not None:
            context.graphql_document = self.cache.document(context.query)
        context.parse_options["max_tokens"] = self.cache.limits.max_tokens
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if context.pre_execution_errors is None and document is not None:
            checked = self.cache.check(
                context.schema._schema,  # the graphql-core schema, as Strawberry's own
                context.query,  # validation reads it
                document,
                context.validation_rules,
            )
            context.graphql_document = checked.document
            context.pre_execution_errors = list(checked.errors)
        yield
