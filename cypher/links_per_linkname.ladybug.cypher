// name: links_per_linkname
// params:
// answers: how many links the store holds per link name and pair of databases
MATCH (a)-[r]->(b)
RETURN label(r) AS linkname, label(a) AS dbfrom, label(b) AS dbto, count(*) AS links
ORDER BY linkname, dbfrom, dbto
