// name: sequence_publications
// params: db="" (""|nuccore|protein), uid=""
// answers: the PubMed articles linked with a nucleotide or protein sequence, either way (every sequence when uid is empty)
MATCH (s)-[r]-(p:pubmed)
WHERE labels(s)[0] IN ['nuccore', 'protein']
  AND ($db = '' OR labels(s)[0] = $db)
  AND ($uid = '' OR s.uid = $uid)
RETURN DISTINCT labels(s)[0] AS db, s.uid AS uid, s.accession AS accession, p.uid AS pmid, p.name AS title
ORDER BY db, uid, pmid
