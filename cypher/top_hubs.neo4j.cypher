// name: top_hubs
// params: limit=10 (1..)
// answers: the most linked records (links in either direction)
MATCH (n)-[r]-()
WITH n, count(r) AS degree
RETURN labels(n)[0] AS db, n.uid AS uid, n.name AS name, degree AS links
ORDER BY links DESC, db, uid
LIMIT $limit
