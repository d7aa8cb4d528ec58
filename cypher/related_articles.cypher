// name: related_articles
// params: pmid="", limit=10 (1..)
// answers: the articles most related to a PubMed article by pubmed_pubmed score (every article when pmid is empty)
MATCH (a:pubmed)-[r:pubmed_pubmed]->(b:pubmed)
WHERE $pmid = '' OR a.uid = $pmid
RETURN a.uid AS pmid, b.uid AS related, b.name AS title, r.score AS score
ORDER BY coalesce(r.score, -1) DESC, pmid, related
LIMIT $limit
