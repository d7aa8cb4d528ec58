// name: records_per_db
// params:
// answers: how many records the store holds per Entrez database, and how many have a name
MATCH (n)
WHERE label(n) <> 'eg_cursor'
RETURN label(n) AS db, count(*) AS records, count(n.name) AS named
ORDER BY db
