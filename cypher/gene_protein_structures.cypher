// name: gene_protein_structures
// params: gene="672"
// answers: the 3D structures of a gene's RefSeq proteins (gene_protein_refseq, then protein_structure)
MATCH (g:gene {uid: $gene})-[:gene_protein_refseq]->(p:protein)-[:protein_structure]->(s:structure)
RETURN g.uid AS gene, g.name AS gene_name, p.uid AS protein, p.name AS protein_name,
       s.uid AS structure, s.name AS structure_name
ORDER BY protein, structure
