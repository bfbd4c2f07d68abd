"""Vision: photo bytes to faces, who they are and how they feel.

``imaging`` decodes untrusted bytes; ``faces`` finds and embeds faces (MTCNN, FaceNet); ``emotion``
reads a face's emotion; ``analyzer`` runs the three over a photo; ``worker`` runs the analyzer off the
event loop, batching concurrent photos; ``gallery`` matches embeddings against a chat's enrolled users;
``recognizer`` ties the gallery to the store; ``annotate`` draws the faces on a copy of the photo.
"""
